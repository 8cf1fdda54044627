"""JSON-in-Any encoding shared by the worker server and the host-tool client.

Wire convention (README_GRPC.md, "Values"): a ``google.protobuf.Any`` carries
raw JSON bytes in ``Any.value``; the ``type_url`` names the JSON kind as
``type.googleapis.com/snakepit.<kind>`` where kind is one of ``null``,
``boolean``, ``integer``, ``float``, ``string``, ``list`` or ``map``.

Decoding accepts what every known peer sends: our own kinds, upstream's
``google.protobuf.StringValue`` type_url with JSON bytes (what Snakepit's
Elixir host sends), and real packed ``StringValue`` / ``Value`` messages (what
upstream's Python ``call_elixir_tool`` sends).

JSON has no NaN or infinities, so floats ``nan``, ``inf`` and ``-inf`` travel
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. A value whose
kind is ``float`` decodes back to the float; inside lists and maps the
strings stay strings (a real string ``"NaN"`` must never turn into a float).

Values JSON cannot represent are converted (``model_dump``, ``to_dict``,
``_asdict``, ``tolist``, ``isoformat``); failing those, and for bytes that
are not UTF-8 inside a structure, encoding fails with :class:`EncodingError`
so that no data is silently lost. An adapter that prefers upstream's
graceful fallback opts in with the class attribute
``graceful_serialization = True`` (or ``SNAKEPIT_GRACEFUL_SERIALIZATION=1``):
such values then become the marker
``{"__ffi_unserializable__": true, "__type__": "mod.Cls"}``.

Decoding refuses JSON nested deeper than the interpreter's recursion limit
(an :class:`EncodingError`, so a caller's argument is invalid input);
encoding refuses values nested deeper than :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from google.protobuf import any_pb2, struct_pb2, wrappers_pb2
from google.protobuf.json_format import MessageToDict

from .errors import bounded

log = logging.getLogger(__name__)

TYPE_URL_PREFIX = "type.googleapis.com/"
SNAKEPIT_TYPE_PREFIX = TYPE_URL_PREFIX + "snakepit."

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"
_SPECIAL_FLOATS = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}

UNSERIALIZABLE_KEY = "__ffi_unserializable__"
_REPR_POLICIES = ("none", "type", "repr_truncated", "repr_redacted_truncated")
_warned_types: set[str] = set()

MAX_DEPTH = 200
_graceful = os.environ.get("SNAKEPIT_GRACEFUL_SERIALIZATION", "").strip() == "1"


class EncodingError(ValueError):
    """A value could not be encoded or decoded under the wire convention."""


def set_graceful(enabled: bool) -> None:
    """Turns the marker fallback for unserializable values on or off (process-wide)."""
    global _graceful
    _graceful = bool(enabled)


def graceful() -> bool:
    """Whether unserializable values become markers instead of an EncodingError."""
    return _graceful


def kind_of(value: Any) -> str:
    """Returns the wire kind (the type_url suffix) of a JSON-compatible value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    raise EncodingError(f"{type(value).__name__} is not JSON data; convert it first")


def _float_token(value: float) -> Any:
    if math.isnan(value):
        return NAN
    if math.isinf(value):
        return POS_INF if value > 0 else NEG_INF
    return value


def _tolist_limit() -> int:
    try:
        return int(os.environ.get("SNAKEPIT_TOLIST_MAX_ELEMENTS", "1000000"))
    except ValueError:
        return 1_000_000


def _marker(value: Any) -> dict[str, Any]:
    cls = type(value)
    type_name = f"{cls.__module__}.{cls.__qualname__}"
    if not _graceful:
        what = "bytes that are not UTF-8" if isinstance(value, (bytes, bytearray, memoryview)) else type_name
        raise EncodingError(
            f"cannot encode {what} as JSON (return bytes on their own, convert the value, or set "
            "graceful_serialization = True on the adapter to send a marker instead)"
        )
    marker: dict[str, Any] = {UNSERIALIZABLE_KEY: True, "__type__": type_name}
    policy = os.environ.get("SNAKEPIT_UNSERIALIZABLE_DETAIL", "none")
    if policy not in _REPR_POLICIES:
        policy = "none"
    if policy.startswith("repr"):
        try:
            maxlen = int(os.environ.get("SNAKEPIT_UNSERIALIZABLE_REPR_MAXLEN", "500"))
        except ValueError:
            maxlen = 500
        maxlen = max(0, min(maxlen, 2000))
        text = repr(value)
        if policy == "repr_redacted_truncated":
            text = _redact(text)
        marker["__repr__"] = text[:maxlen]
    if type_name not in _warned_types:
        _warned_types.add(type_name)
        log.warning("result contains unserializable %s; sent as a marker", type_name)
    return marker


def _redact(text: str) -> str:
    """Blanks out anything that looks like a secret assignment in a repr."""
    import re

    return re.sub(
        r"(?i)(password|secret|token|api[_-]?key)(\s*[=:]\s*)(\S+)",
        r"\1\2<redacted>",
        text,
    )


def _convert_object(value: Any) -> Any:
    """Turns a non-JSON object into JSON-compatible data, or a marker."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _marker(value)
    for attr in ("model_dump", "to_dict", "_asdict"):
        method = getattr(value, attr, None)
        if callable(method):
            try:
                return method()
            except Exception:  # noqa: BLE001 - fall through to the next strategy
                continue
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        size = getattr(value, "size", None)
        if not isinstance(size, int) or size <= _tolist_limit():
            try:
                return tolist()
            except Exception:  # noqa: BLE001
                pass
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        try:
            return isoformat()
        except Exception:  # noqa: BLE001
            pass
    return _marker(value)


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Returns value as plain JSON data (dict/list/str/int/float/bool/None).

    Special floats become their string tokens, tuples become lists, mapping
    keys become strings and unknown objects are converted gracefully.
    """
    if _depth > MAX_DEPTH:
        raise EncodingError(f"value is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _float_token(value)
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, _depth + 1) for v in value]
    converted = _convert_object(value)
    if isinstance(converted, dict) and converted.get(UNSERIALIZABLE_KEY) is True:
        return converted
    return to_jsonable(converted, _depth + 1)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float, bool)) or key is None:
        return json.dumps(key)
    return str(key)


def dumps(value: Any) -> bytes:
    """Encodes value as compact JSON bytes under the wire convention."""
    return json.dumps(
        to_jsonable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def encode_any(value: Any) -> any_pb2.Any:
    """Packs value as JSON bytes in an Any whose type_url names its kind."""
    data = to_jsonable(value)
    kind = "float" if isinstance(value, float) else kind_of(data)
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return any_pb2.Any(type_url=SNAKEPIT_TYPE_PREFIX + kind, value=payload.encode("utf-8"))


def type_name(type_url: str) -> str:
    """Returns the kind named by a type_url: the text after the last '/' and '.'."""
    name = type_url.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1]


def decode_any(message: any_pb2.Any) -> Any:
    """Unpacks an Any written by any known peer; raises EncodingError if it cannot."""
    full = message.type_url.rsplit("/", 1)[-1]
    raw = bytes(message.value)
    if not raw:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:  # the C scanner stops at the interpreter's recursion limit
        raise EncodingError("JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        packed = _decode_packed(full, raw)
        if packed is not _NOTHING:
            return packed
        raise EncodingError(f"Any of type {bounded(message.type_url)!r} is not JSON: {bounded(str(exc))}") from exc
    if type_name(full) == "float" and isinstance(value, str):
        return _SPECIAL_FLOATS.get(value, value)
    return value


_NOTHING = object()


def _decode_packed(full_name: str, raw: bytes) -> Any:
    """Decodes a real packed protobuf wrapper, as upstream's Python client sends."""
    try:
        if full_name == "google.protobuf.StringValue":
            return wrappers_pb2.StringValue.FromString(raw).value
        if full_name == "google.protobuf.BoolValue":
            return wrappers_pb2.BoolValue.FromString(raw).value
        if full_name == "google.protobuf.Value":
            msg = struct_pb2.Value.FromString(raw)
            return MessageToDict(msg)
        if full_name == "google.protobuf.Struct":
            return MessageToDict(struct_pb2.Struct.FromString(raw))
    except Exception:  # noqa: BLE001 - not a packed message either
        return _NOTHING
    return _NOTHING


def encode_params(params: dict[str, Any]) -> dict[str, any_pb2.Any]:
    """Encodes a mapping of parameter values for a request's parameters field."""
    return {str(name): encode_any(value) for name, value in params.items()}


def decode_params(params: Any) -> dict[str, Any]:
    """Decodes a request's parameters map; names the parameter on failure."""
    out: dict[str, Any] = {}
    for name, message in params.items():
        try:
            out[name] = decode_any(message)
        except EncodingError as exc:
            raise EncodingError(f"parameter {bounded(name)!r}: {exc}") from exc
    return out


def encode_chunk(payload: Any) -> tuple[bytes, str]:
    """Encodes a stream chunk payload; returns the bytes and their encoding name.

    bytes travel as-is ("binary"), str as UTF-8 ("text"), None as empty
    ("empty") and anything else as JSON ("json").
    """
    if payload is None:
        return b"", "empty"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), "binary"
    if isinstance(payload, str):
        return payload.encode("utf-8"), "text"
    return dumps(payload), "json"
