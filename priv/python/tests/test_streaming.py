"""ExecuteStreamingTool: sync/async generators, final chunks, back-pressure, cancellation."""

from __future__ import annotations

import json

import grpc
import pytest

from conftest import call, stream_request, wait_until


def test_async_generator_streams_with_synthetic_final(shared_worker):
    chunks = list(shared_worker.stub.ExecuteStreamingTool(stream_request("stream_count", n=5), timeout=10))
    assert [json.loads(c.data) for c in chunks[:-1]] == [{"index": i} for i in range(5)]
    assert [c.chunk_id for c in chunks] == [f"stream_count-{i}" for i in range(1, 7)]
    assert not any(c.is_final for c in chunks[:-1])
    final = chunks[-1]
    assert final.is_final and final.data == b""
    assert final.metadata["synthetic_final"] == "true" and final.metadata["chunks_sent"] == "5"
    assert all(c.metadata["encoding"] == "json" for c in chunks[:-1])


def test_sync_generator_streams(edge_worker):
    chunks = list(edge_worker.stub.ExecuteStreamingTool(stream_request("count_sync", name="s1", n=3)))
    assert [json.loads(c.data) for c in chunks[:-1]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert chunks[-1].is_final
    assert call(edge_worker.stub, "producer_state", name="s1") == {"produced": 3, "closed": True}


def test_explicit_final_chunk_ends_stream_and_encodings(edge_worker):
    chunks = list(edge_worker.stub.ExecuteStreamingTool(stream_request("mixed_chunks")))
    assert [(c.data, c.metadata["encoding"]) for c in chunks] == [
        (b"text", "text"), (b"\x00\xff", "binary"), (b"", "empty"), (b'{"done":true}', "json")]
    assert chunks[-1].is_final and chunks[-1].metadata["stage"] == "end"
    assert "synthetic_final" not in chunks[-1].metadata


def test_streaming_tool_returning_a_list(edge_worker):
    chunks = list(edge_worker.stub.ExecuteStreamingTool(stream_request("list_stream")))
    assert [c.data for c in chunks[:-1]] == [b"1", b"2", b"3"]


def test_non_streaming_tool_on_stream_endpoint_gives_one_chunk(shared_worker):
    chunks = list(shared_worker.stub.ExecuteStreamingTool(stream_request("add", a=1, b=2)))
    assert len(chunks) == 2 and chunks[0].data == b"3" and chunks[1].is_final


def test_streaming_tool_on_unary_endpoint_is_refused(shared_worker):
    from conftest import ToolFailed

    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "stream_count", n=3)
    assert info.value.payload["type"] == "StreamingMismatchError"
    assert "ExecuteStreamingTool" in info.value.payload["message"]


def test_failure_mid_stream_aborts_with_structured_status(edge_worker):
    it = edge_worker.stub.ExecuteStreamingTool(stream_request("async_fail_stream", after=2))
    got = []
    with pytest.raises(grpc.RpcError) as info:
        for chunk in it:
            got.append(chunk)
    assert len(got) == 2
    assert info.value.code() == grpc.StatusCode.INTERNAL
    payload = json.loads(info.value.details())
    assert payload["type"] == "KeyError" and payload["context"]["call_type"] == "stream"


@pytest.mark.parametrize("tool, params, code", [
    ("nope", {}, grpc.StatusCode.NOT_FOUND),
    ("stream_count", {}, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_stream_errors_before_start(shared_worker, tool, params, code):
    with pytest.raises(grpc.RpcError) as info:
        list(shared_worker.stub.ExecuteStreamingTool(stream_request(tool, **params)))
    assert info.value.code() == code
    assert json.loads(info.value.details())["type"] in ("ToolNotFoundError", "InvalidArgumentError")


def test_cancel_stops_async_generator(worker):
    it = worker.stub.ExecuteStreamingTool(stream_request("stream_count", n=100000, delay_ms=5))
    for _ in range(3):
        next(it)
    it.cancel()
    stats = wait_until(lambda: [s for s in call(worker.stub, "stream_stats") if s["closed"]])
    assert stats[-1]["completed"] is False
    produced = stats[-1]["produced"]
    assert produced < 100000
    assert call(worker.stub, "stream_stats")[-1]["produced"] == produced  # stopped for good


def test_cancel_closes_sync_generator(edge_worker):
    it = edge_worker.stub.ExecuteStreamingTool(stream_request("count_sync", name="c1", n=100000, delay_ms=2))
    next(it)
    it.cancel()
    state = wait_until(lambda: (s := call(edge_worker.stub, "producer_state", name="c1"))["closed"] and s)
    assert state["produced"] < 100000


def test_slow_consumer_holds_the_producer_back(edge_worker):
    """Back-pressure: a client that stops reading stops the generator soon after."""
    n, size = 5000, 64 * 1024  # 312 MiB if nothing held it back
    it = edge_worker.stub.ExecuteStreamingTool(stream_request("count_sync", name="bp", n=n, size=size))
    next(it)

    previous = [-1]

    def settled():  # the same count on two polls 0.3 s apart: the producer is parked
        current = call(edge_worker.stub, "producer_state", name="bp")["produced"]
        same = current == previous[0] and current > 0
        previous[0] = current
        return same and current

    produced = wait_until(settled, timeout=20, interval=0.3)
    assert produced < n // 5, f"producer ran ahead to {produced} of {n} chunks"
    it.cancel()
    wait_until(lambda: call(edge_worker.stub, "producer_state", name="bp")["closed"])
