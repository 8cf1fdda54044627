"""JSON-in-Any encoding: kinds, special floats, peers' encodings, graceful fallback."""

from __future__ import annotations

import datetime
import json
import math
from collections import namedtuple

import pytest
from google.protobuf import any_pb2, struct_pb2, wrappers_pb2

from snakepit_bridge import serialization as s


@pytest.mark.parametrize(
    "value, kind",
    [
        (None, "null"),
        (True, "boolean"),
        (7, "integer"),
        (2.5, "float"),
        ("hi", "string"),
        ([1, "a"], "list"),
        ((1, 2), "list"),
        ({"a": {"b": [1]}}, "map"),
    ],
)
def test_round_trip_and_kind(value, kind):
    encoded = s.encode_any(value)
    assert encoded.type_url == f"type.googleapis.com/snakepit.{kind}"
    expected = list(value) if isinstance(value, tuple) else value
    assert s.decode_any(encoded) == expected


@pytest.mark.parametrize("value, token", [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")])
def test_special_floats_travel_as_strings(value, token):
    encoded = s.encode_any(value)
    assert json.loads(encoded.value) == token
    decoded = s.decode_any(encoded)
    assert isinstance(decoded, float)
    assert (math.isnan(decoded) if math.isnan(value) else decoded == value)


def test_special_floats_nested_stay_strings_and_strings_stay_strings():
    encoded = s.encode_any({"x": [math.nan, 1.0], "s": "NaN"})
    assert s.decode_any(encoded) == {"x": ["NaN", 1.0], "s": "NaN"}
    assert s.decode_any(s.encode_any("NaN")) == "NaN"


def test_decodes_upstream_elixir_stringvalue_with_json_bytes():
    msg = any_pb2.Any(type_url="type.googleapis.com/google.protobuf.StringValue", value=b'{"k":[1,2]}')
    assert s.decode_any(msg) == {"k": [1, 2]}


def test_decodes_real_packed_wrappers():
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.StringValue(value="plain text"))
    assert s.decode_any(packed) == "plain text"
    value = any_pb2.Any()
    value.Pack(struct_pb2.Value(number_value=3.0))
    assert s.decode_any(value) == 3.0


def test_undecodable_any_is_a_clear_error():
    msg = any_pb2.Any(type_url="type.googleapis.com/snakepit.map", value=b"\xff\x00not json")
    with pytest.raises(s.EncodingError, match="snakepit.map"):
        s.decode_any(msg)
    with pytest.raises(s.EncodingError, match="parameter 'p'"):
        s.decode_params({"p": msg})


def test_empty_any_is_none():
    assert s.decode_any(any_pb2.Any()) is None


def test_graceful_conversion_of_objects():
    Pair = namedtuple("Pair", "a b")

    class Model:
        def model_dump(self):
            return {"m": 1}

    value = {
        "when": datetime.date(2024, 1, 2),
        "pair": Pair(1, 2),
        "model": Model(),
        "set": {3},
        "text_bytes": b"abc",
        7: "int key",
    }
    out = s.to_jsonable(value)
    assert out == {
        "when": "2024-01-02",
        "pair": [1, 2],
        "model": {"m": 1},
        "set": [3],
        "text_bytes": "abc",
        "7": "int key",
    }


@pytest.fixture
def graceful():
    s.set_graceful(True)
    yield
    s.set_graceful(False)


def test_unserializable_is_an_error_by_default():
    with pytest.raises(s.EncodingError, match="cannot encode"):
        s.to_jsonable({"x": object()})
    with pytest.raises(s.EncodingError, match="not UTF-8"):
        s.to_jsonable({"blob": b"\xff"})
    assert s.to_jsonable({"blob": b"ok"}) == {"blob": "ok"}


def test_over_deep_json_is_an_encoding_error():
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(s.EncodingError, match="nested too deeply"):
        s.decode_any(any_pb2.Any(type_url=s.SNAKEPIT_TYPE_PREFIX + "list", value=deep.encode()))


def test_unserializable_marker_and_repr_policy(monkeypatch, graceful):
    class Secret:
        def __repr__(self):
            return "Secret(password=hunter2)"

    marker = s.to_jsonable(Secret())
    assert marker[s.UNSERIALIZABLE_KEY] is True
    assert marker["__type__"].endswith("Secret")
    assert "__repr__" not in marker
    monkeypatch.setenv("SNAKEPIT_UNSERIALIZABLE_DETAIL", "repr_redacted_truncated")
    monkeypatch.setenv("SNAKEPIT_UNSERIALIZABLE_REPR_MAXLEN", "18")
    marker = s.to_jsonable(Secret())
    assert marker["__repr__"] == "Secret(password=<r"
    monkeypatch.setenv("SNAKEPIT_UNSERIALIZABLE_REPR_MAXLEN", "500")
    assert "hunter2" not in s.to_jsonable(Secret())["__repr__"]


def test_tolist_is_size_guarded(monkeypatch, graceful):
    class Array:
        size = 10

        def tolist(self):
            return list(range(10))

    assert s.to_jsonable(Array()) == list(range(10))
    monkeypatch.setenv("SNAKEPIT_TOLIST_MAX_ELEMENTS", "5")
    assert s.to_jsonable(Array())[s.UNSERIALIZABLE_KEY] is True


def test_deep_nesting_is_refused():
    value: list = []
    for _ in range(300):
        value = [value]
    with pytest.raises(s.EncodingError, match="nested"):
        s.encode_any(value)


@pytest.mark.parametrize(
    "payload, data, encoding",
    [
        (None, b"", "empty"),
        (b"\x00\x01", b"\x00\x01", "binary"),
        ("héllo", "héllo".encode(), "text"),
        ({"a": math.inf}, b'{"a":"Infinity"}', "json"),
    ],
)
def test_chunk_encoding(payload, data, encoding):
    assert s.encode_chunk(payload) == (data, encoding)


def test_type_name_takes_last_segment():
    assert s.type_name("type.googleapis.com/snakepit.float") == "float"
    assert s.type_name("type.googleapis.com/google.protobuf.StringValue") == "StringValue"
