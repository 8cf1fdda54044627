"""Adapters: a class whose ``@tool`` methods the host can call.

An adapter is a subclass of :class:`BaseAdapter`; each method marked with
:func:`tool` becomes a tool. Tools may be plain functions, coroutines, sync
generators or async generators (streaming). The worker creates **one adapter
instance per process**: :meth:`BaseAdapter.initialize` runs once before the
worker reports ready (load models there) and :meth:`BaseAdapter.cleanup` once
at shutdown. Upstream Snakepit made a new instance per RPC, which reloads
state on every call; adapters written for it still work here.

Per-call state (the session, the request metadata) is read from
:attr:`BaseAdapter.session_context`, which is bound per call through a
context variable, so concurrent calls on one instance never see each other's.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar

from . import serialization
from . import snakepit_bridge_pb2 as pb2
from .errors import InvalidArgumentError, ToolNotFoundError, bounded, bounded_names

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_current_context: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "snakepit_session_context", default=None
)

_TOOL_ATTR = "_tool_metadata"

# The id this process serves as (set by the worker server at start). Tools
# are registered under it: the host lets a worker register only as itself.
_worker_id = ""


def set_worker_id(worker_id: str) -> None:
    """Sets the worker id registrations default to (the worker server calls it)."""
    global _worker_id
    _worker_id = worker_id


def current_worker_id() -> str:
    """The id this process serves as ("" before the worker server set it)."""
    return _worker_id


@dataclass
class ToolMetadata:
    """What :func:`tool` attaches to a method as ``_tool_metadata`` (upstream's fields first).

    ``supports_streaming`` None means "whether the method is a generator".
    ``parameters`` is filled when the adapter's tools are discovered.
    """

    description: str = ""
    supports_streaming: Optional[bool] = None
    required_variables: list[str] = field(default_factory=list)
    parameters: list["ParamInfo"] = field(default_factory=list)
    name: str = ""
    thread_sensitive: bool = False


def tool(
    func: Optional[F] = None,
    *,
    name: Optional[str] = None,
    description: str = "",
    supports_streaming: Optional[bool] = None,
    required_variables: Optional[list[str]] = None,
    thread_sensitive: bool = False,
) -> Any:
    """Marks an adapter method as a tool; usable as ``@tool`` or ``@tool(...)``.

    Upstream's signature (``description``, ``supports_streaming``,
    ``required_variables``) plus ``name`` and ``thread_sensitive``.
    ``supports_streaming`` defaults to whether the method is a (sync or async)
    generator. ``thread_sensitive=True`` runs a sync tool on the event-loop
    (main) thread instead of a worker thread.
    """

    def mark(fn: F) -> F:
        setattr(
            fn,
            _TOOL_ATTR,
            ToolMetadata(
                name=name or fn.__name__,
                description=description or inspect.getdoc(fn) or "",
                supports_streaming=supports_streaming,
                required_variables=list(required_variables or []),
                thread_sensitive=thread_sensitive,
            ),
        )
        return fn

    if func is not None:
        return mark(func)
    return mark


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a tool, as discovered from its signature."""

    name: str
    type: str
    required: bool
    default: Any = None
    # The resolved annotation, checked against each argument by bind().
    annotation: Any = field(default=Any, compare=False, repr=False)


# Declared types bind() checks, by the type an argument must be an instance
# of. bool is not an int here, an int is a float (JSON has one number type).
_CHECKED: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
    list: (list, tuple),
    tuple: (list, tuple),
    dict: (dict,),
    bytes: (bytes, bytearray, memoryview),
    bytearray: (bytes, bytearray, memoryview),
}


def type_error(value: Any, annotation: Any) -> Optional[str]:
    """Returns why value does not fit annotation, or None when it fits (or is not checkable).

    Checked: int, float, str, bool, list, tuple, dict, bytes, their generic
    forms (``list[int]`` checks the list, not its items), ``Optional[X]`` /
    ``X | None`` and unions of these. Anything else (Any, a class of the
    adapter's own, a string annotation that did not resolve) is not checked.
    """
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        checkable = [a for a in options if a is not type(None)]
        reasons = [type_error(value, a) for a in checkable]
        if any(r is None for r in reasons):
            return None
        return "expected " + " or ".join(_type_name(a) for a in options)
    if annotation is type(None):
        return None if value is None else "expected None"
    base = origin if origin is not None else annotation
    allowed = _CHECKED.get(base)
    if allowed is None:
        return None
    if isinstance(value, bool) and base is not bool:
        return f"expected {_type_name(annotation)}, got bool"
    if isinstance(value, allowed):
        return None
    return f"expected {_type_name(annotation)}, got {type(value).__name__}"


@dataclass
class ToolInfo:
    """A discovered tool: metadata plus how to call it."""

    name: str
    function_name: str
    description: str
    supports_streaming: bool
    is_async: bool
    is_generator: bool
    thread_sensitive: bool
    params: list[ParamInfo]
    var_kwargs: bool
    required_variables: list[str] = field(default_factory=list)

    @property
    def param_names(self) -> list[str]:
        """Names of the declared (non-variadic) parameters."""
        return [p.name for p in self.params]


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if isinstance(annotation, str):
        return annotation.lower()
    origin = typing.get_origin(annotation)
    if origin is not None:
        if origin is typing.Union:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            return _type_name(args[0]) if len(args) == 1 else "any"
        return getattr(origin, "__name__", str(origin)).lower()
    return getattr(annotation, "__name__", str(annotation)).lower()


def _discover(cls: type) -> dict[str, ToolInfo]:
    tools: dict[str, ToolInfo] = {}
    for attr_name in dir(cls):
        fn = getattr(cls, attr_name, None)
        meta = getattr(fn, _TOOL_ATTR, None)
        if not isinstance(meta, ToolMetadata) or not callable(fn):
            continue
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable hints fall back to raw annotations
            hints = {}
        params: list[ParamInfo] = []
        var_kwargs = False
        for i, p in enumerate(sig.parameters.values()):
            if i == 0 and p.name in ("self", "cls"):
                continue
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                var_kwargs = True
                continue
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            ann = hints.get(p.name, p.annotation)
            has_default = p.default is not inspect.Parameter.empty
            params.append(
                ParamInfo(
                    name=p.name,
                    type=_type_name(ann),
                    required=not has_default,
                    default=p.default if has_default else None,
                    annotation=ann,
                )
            )
        meta.parameters = list(params)
        is_gen = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
        streaming = meta.supports_streaming
        info = ToolInfo(
            name=meta.name or fn.__name__,
            function_name=fn.__name__,
            description=meta.description,
            supports_streaming=is_gen if streaming is None else bool(streaming),
            is_async=inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn),
            is_generator=is_gen,
            thread_sensitive=meta.thread_sensitive,
            params=params,
            var_kwargs=var_kwargs,
            required_variables=list(meta.required_variables),
        )
        if info.name in tools:
            raise TypeError(f"{cls.__name__}: two tools are named {info.name!r}")
        tools[info.name] = info
    return tools


class BaseAdapter:
    """Base class of adapters; see the module docstring."""

    _tool_cache: dict[type, dict[str, ToolInfo]] = {}

    #: How many calls one worker process may run at once (process profile).
    #: 1 (the default) is upstream's one call per process. An adapter whose
    #: tools are coroutines (or thread-safe sync functions) raises it; the
    #: host then gives each of its workers that capacity, capped by the
    #: pool's MaxCallsPerWorker. The thread profile's capacity is its
    #: --max-workers instead.
    max_concurrency: int = 1

    # -- lifecycle hooks (sync or async) -------------------------------------
    def initialize(self) -> Any:
        """Called once per process before the worker reports ready."""
        return None

    def cleanup(self) -> Any:
        """Called once per process when the worker shuts down."""
        return None

    def __init__(self) -> None:
        # Upstream's BaseAdapter.__init__ sets this (and _session_context,
        # a property here); adapters that call super().__init__() and read it
        # keep working.
        self._tools_cache: Optional[list[pb2.ToolRegistration]] = None

    # -- per-call context ------------------------------------------------------
    # Upstream keeps the session context in a plain attribute, which adapters
    # assign (``self.session_context = ctx``). Here assigning it binds the
    # value to the current call (a context variable), so calls running at
    # once on the one instance never see each other's context.
    @property
    def session_context(self) -> Any:
        """The :class:`SessionContext` of the call being run (None outside a call).

        Assignable, as upstream's plain attribute is; an assignment holds for
        the call that makes it (and calls it starts).
        """
        return _current_context.get()

    @session_context.setter
    def session_context(self, ctx: Any) -> None:
        _current_context.set(ctx)

    # Upstream's private name for the same value; adapters read it too.
    _session_context = session_context

    @property
    def session_id(self) -> Optional[str]:
        """The current call's session id (read-only), or None outside a call."""
        ctx = _current_context.get()
        return getattr(ctx, "session_id", None) if ctx is not None else None

    def set_session_context(self, ctx: Any) -> None:
        """Binds ctx as the session context of the current call (upstream API).

        The worker calls it before every call when an adapter overrides it,
        as upstream's server does.
        """
        self.session_context = ctx

    # -- discovery -------------------------------------------------------------
    @classmethod
    def tools(cls) -> dict[str, ToolInfo]:
        """Returns the adapter's tools by name (discovered once per class)."""
        cached = BaseAdapter._tool_cache.get(cls)
        if cached is None:
            cached = _discover(cls)
            BaseAdapter._tool_cache[cls] = cached
        return cached

    def get_tools(self) -> list[pb2.ToolRegistration]:
        """Returns a ToolRegistration per tool, for RegisterTools."""
        cls = type(self)
        out = []
        for info in sorted(self.tools().values(), key=lambda t: t.name):
            specs = []
            for p in info.params:
                spec = pb2.ParameterSpec(name=p.name, type=p.type, required=p.required)
                if not p.required:
                    spec.default_value.CopyFrom(serialization.encode_any(p.default))
                    spec.validation_json = json.dumps(
                        {"default": serialization.to_jsonable(p.default)}
                    )
                specs.append(spec)
            out.append(
                pb2.ToolRegistration(
                    name=info.name,
                    description=info.description,
                    parameters=specs,
                    supports_streaming=info.supports_streaming,
                    metadata={
                        "adapter_class": cls.__name__,
                        "module": cls.__module__,
                        "function": info.function_name,
                        "is_async": str(info.is_async).lower(),
                        "thread_sensitive": str(info.thread_sensitive).lower(),
                        "required_variables": json.dumps(info.required_variables),
                    },
                )
            )
        return out

    def registration(self, session_id: str, worker_id: str) -> pb2.RegisterToolsRequest:
        """The RegisterTools request announcing this adapter's tools to the host."""
        return pb2.RegisterToolsRequest(
            session_id=session_id, tools=self.get_tools(), worker_id=worker_id or _worker_id or f"python-{id(self)}"
        )

    def register_with_session(self, session_id: str, stub: Any, worker_id: str = "") -> list[str]:
        """Registers the adapter's tools with the host; returns the host's tool ids.

        Upstream API. A ``duplicate_tool`` answer counts as success. The
        worker registers its tools itself at start; adapters that also call
        this get the same answer again.
        """
        resp = stub.RegisterTools(self.registration(session_id, worker_id))
        if not registration_accepted(resp):
            raise RuntimeError(f"RegisterTools failed: {resp.error_message}")
        return list(resp.tool_ids.values())

    async def register_with_session_async(self, session_id: str, stub: Any, worker_id: str = "") -> list[str]:
        """Like :meth:`register_with_session`, with an asyncio stub (upstream API)."""
        resp = await stub.RegisterTools(self.registration(session_id, worker_id))
        if not registration_accepted(resp):
            raise RuntimeError(f"RegisterTools failed: {resp.error_message}")
        return list(resp.tool_ids.values())

    # -- dispatch --------------------------------------------------------------
    def resolve(self, tool_name: str) -> ToolInfo:
        """Returns the tool named tool_name or raises ToolNotFoundError."""
        info = self.tools().get(tool_name)
        if info is None:
            raise ToolNotFoundError(
                f"{type(self).__name__} has no tool {bounded(tool_name)!r} "
                f"(tools: {bounded_names(sorted(self.tools()))})"
            )
        return info

    def bind(self, info: ToolInfo, arguments: dict[str, Any]) -> dict[str, Any]:
        """Checks arguments against the tool's signature; returns the kwargs to call with."""
        declared = info.param_names
        if not info.var_kwargs:
            unknown = sorted(set(arguments) - set(declared))
            if unknown:
                raise InvalidArgumentError(
                    f"tool {info.name!r} got unknown parameter(s) {bounded_names(unknown)}; "
                    f"it takes: {bounded_names(declared) if declared else 'nothing'}"
                )
        missing = [p.name for p in info.params if p.required and p.name not in arguments]
        if missing:
            raise InvalidArgumentError(
                f"tool {info.name!r} is missing required parameter(s) {', '.join(missing)}"
            )
        for p in info.params:
            if p.name not in arguments:
                continue
            value = arguments[p.name]
            if value is None and not p.required and p.default is None:
                continue  # `x: int = None` takes an explicit None
            reason = type_error(value, p.annotation)
            if reason is not None:
                raise InvalidArgumentError(f"tool {info.name!r}: parameter {p.name!r}: {reason}")
        return dict(arguments)

    def function(self, info: ToolInfo) -> Callable[..., Any]:
        """Returns the bound method implementing the tool."""
        return getattr(self, info.function_name)

    def call_tool(self, tool_name: str, **kwargs: Any) -> Any:
        """Calls the tool named tool_name with kwargs (upstream API).

        Arguments are checked as for a call from the host; the result is
        what the method returns (a coroutine or generator for async and
        streaming tools). Unknown names raise :class:`ToolNotFoundError`.
        """
        info = self.resolve(tool_name)
        return self.function(info)(**self.bind(info, kwargs))

    def execute_tool(self, tool_name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """Runs a tool by name (upstream API).

        The worker server does not go through this method unless an adapter
        overrides it; it resolves, binds and schedules tools itself (threads,
        coroutines, generators). Returns whatever the tool returns, which is a
        coroutine or generator for async and streaming tools.
        """
        if context is not None:
            self.set_session_context(context)
        return self.call_tool(tool_name, **arguments)


def registration_accepted(resp: pb2.RegisterToolsResponse) -> bool:
    """Whether the host took a registration (an answer of ``duplicate_tool`` counts)."""
    return resp.success or "duplicate_tool" in resp.error_message


def overrides_execute_tool(adapter: BaseAdapter) -> bool:
    """Reports whether an adapter replaces the default dispatch (upstream style)."""
    return getattr(type(adapter), "execute_tool", None) is not BaseAdapter.execute_tool


def overrides_set_session_context(adapter: Any) -> bool:
    """Reports whether an adapter has its own set_session_context (called before each call)."""
    own = getattr(type(adapter), "set_session_context", None)
    return callable(own) and own is not BaseAdapter.set_session_context


def current_context_var() -> contextvars.ContextVar[Any]:
    """The context variable holding the current call's session context."""
    return _current_context


def current_request_metadata(key: str) -> str:
    """The current call's request metadata value for ``key``, or ``""`` outside a call."""
    ctx = _current_context.get(None)
    metadata = getattr(ctx, "request_metadata", None) or {}
    value = metadata.get(key, "")
    return value if isinstance(value, str) else ""
