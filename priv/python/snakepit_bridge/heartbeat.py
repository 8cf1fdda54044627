"""The worker's own heartbeat to the host (Python → host ``Heartbeat`` RPC).

A *dependent* worker shuts itself down (exit code 70) after
``max_missed_heartbeats`` consecutive failed heartbeats: if the host stops
answering, its workers do not linger. An *independent* worker only logs.
Configuration: ``SNAKEPIT_HEARTBEAT_CONFIG`` (JSON) overridden by the
``--heartbeat-*`` flags.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Optional

import grpc
from google.protobuf import timestamp_pb2

from . import snakepit_bridge_pb2 as pb2

log = logging.getLogger(__name__)

EXIT_HEARTBEAT_LOST = 70


@dataclass(frozen=True)
class HeartbeatConfig:
    """Settings of the heartbeat loop (upstream's keys and defaults)."""

    enabled: bool = False
    interval_ms: int = 2000
    timeout_ms: int = 10000
    max_missed_heartbeats: int = 3
    initial_delay_ms: int = 0
    jitter_ms: int = 0
    dependent: bool = True

    @classmethod
    def from_env(cls, raw: Optional[str] = None) -> "HeartbeatConfig":
        """Reads SNAKEPIT_HEARTBEAT_CONFIG; unknown keys are ignored, bad JSON is an error."""
        raw = os.environ.get("SNAKEPIT_HEARTBEAT_CONFIG", "") if raw is None else raw
        if not raw.strip():
            return cls()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"SNAKEPIT_HEARTBEAT_CONFIG is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("SNAKEPIT_HEARTBEAT_CONFIG must be a JSON object")
        known = {f.name for f in fields(cls)}
        if "ping_interval_ms" in data and "interval_ms" not in data:
            data["interval_ms"] = data["ping_interval_ms"]
        return cls(**{k: v for k, v in data.items() if k in known}).validated()

    def override(self, **changes: Any) -> "HeartbeatConfig":
        """Returns a copy with the non-None changes applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> "HeartbeatConfig":
        """Checks the values; raises ValueError naming the bad one."""
        for name in ("interval_ms", "timeout_ms", "max_missed_heartbeats"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"heartbeat {name} must be positive")
        for name in ("initial_delay_ms", "jitter_ms"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"heartbeat {name} must not be negative")
        return self


class HeartbeatClient:
    """Sends Heartbeat to the host every interval and counts consecutive misses."""

    def __init__(
        self,
        stub: Any,
        session_id: str,
        config: HeartbeatConfig,
        on_lost: Callable[[], None],
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._stub = stub
        self._session_id = session_id
        self._config = config
        self._on_lost = on_lost
        self._metadata = metadata
        self.missed = 0
        self.sent = 0

    async def beat(self) -> bool:
        """Sends one heartbeat; returns whether the host answered."""
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        self.sent += 1
        try:
            await self._stub.Heartbeat(
                pb2.HeartbeatRequest(session_id=self._session_id, client_time=now),
                timeout=self._config.timeout_ms / 1000,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            self.missed += 1
            log.warning("heartbeat %d missed (%d/%d): %s", self.sent, self.missed,
                        self._config.max_missed_heartbeats, exc.code().name)
            return False
        self.missed = 0
        log.debug("heartbeat %d answered", self.sent)
        return True

    async def run(self) -> None:
        """Beats until cancelled; calls on_lost once when a dependent worker loses the host."""
        cfg = self._config
        await asyncio.sleep(cfg.initial_delay_ms / 1000)
        while True:
            ok = await self.beat()
            if not ok and self.missed >= cfg.max_missed_heartbeats:
                if cfg.dependent:
                    log.error("host missed %d heartbeats; dependent worker shuts down", self.missed)
                    self._on_lost()
                    return
                log.warning("host missed %d heartbeats; independent worker keeps running", self.missed)
            jitter = random.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0
            await asyncio.sleep((cfg.interval_ms + jitter) / 1000)
