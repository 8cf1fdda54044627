from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunningCall(_message.Message):
    __slots__ = ["call_id", "cancelled", "elapsed_ms", "tool_name"]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    cancelled: bool
    elapsed_ms: int
    tool_name: str
    def __init__(self, call_id: _Optional[str] = ..., tool_name: _Optional[str] = ..., elapsed_ms: _Optional[int] = ..., cancelled: bool = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ["pid", "running"]
    PID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    pid: int
    running: _containers.RepeatedCompositeFieldContainer[RunningCall]
    def __init__(self, running: _Optional[_Iterable[_Union[RunningCall, _Mapping]]] = ..., pid: _Optional[int] = ...) -> None: ...
