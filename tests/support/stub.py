"""FlowHunt as an ``httpx2.MockTransport``: one session's events, and failures a test lines up; no sockets.

Unit tests hand ``StubFlowHunt().transport`` to a real ``FlowHuntClient``. An event is visible to polls from its
timestamp on (epoch ms, like FlowHunt's); ``then()`` lines up the next invoke's turn, stamped after its message
however slow the machine; ``fail()`` queues what the next call of an endpoint does instead of answering: a status,
or an exception the transport raises (``httpx2.ReadTimeout`` is a request that timed out).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
from pydantic import SecretStr

from flow_mcp.config import Settings

SESSION = "sess-1"
Endpoint = Literal["invoke", "poll"]
_POLL = re.compile(r"/v3/flow-assistants/[^/]+/invocation_response/(\d+)")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stub_settings(**overrides: Any) -> Settings:
    """Settings for a client of the stub: no retries, and every wait of the turn logic in tens of milliseconds."""
    values: dict[str, Any] = {
        "base_url": "http://flowhunt.stub",
        "api_key": SecretStr("fh-stub-key-0123456789"),
        "workspace_id": "ws-stub",
        "settle_seconds": 0.05,
        "poll_min_interval": 0.01,
        "poll_thinking_max_interval": 0.05,
        "poll_max_interval": 0.05,
        "poll_rate": 100.0,
        "poll_lateness": 0.005,
        "heartbeat_seconds": 0.1,
        "max_retries": 0,
        "retry_max_seconds": 0,
        "timeout": 1.0,
    }
    return Settings(**{**values, **overrides})


@dataclass(frozen=True)
class Failure:
    """What one call does instead of answering; ``taken``: an invoke records the message first."""

    outcome: int | Exception
    taken: bool = False


@dataclass
class StubFlowHunt:
    """The session's events, the requests received, and failures queued per endpoint."""

    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx2.Request] = field(default_factory=list)
    failures: dict[Endpoint, list[Failure]] = field(default_factory=lambda: {"invoke": [], "poll": []})
    cached_events: list[dict[str, Any]] = field(default_factory=list)  # what the next invoke answers with
    course: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # the next invoke's turn
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self._handle)

    def add(self, action_type: str, event_type: str = "ai", at: int | None = None, **metadata: Any) -> dict[str, Any]:
        """An event of the session, visible from ``at`` (default: now) on."""
        event = {
            "event_id": f"e{next(self._ids)}",
            "created_at_timestamp": str(now_ms() if at is None else at),
            "action_type": action_type,
            "event_type": event_type,
            "metadata": metadata,
        }
        self.events.append(event)
        return event

    def then(self, after_ms: int, action_type: str, **metadata: Any) -> None:
        """An assistant event of the next invoke's turn, ``after_ms`` after the message it answers."""
        self.course.append((after_ms, action_type, metadata))

    def answer(self, text: str = "Done.", at: int | None = None) -> dict[str, Any]:
        return self.add("message", "ai", at, message=text)

    def fail(self, endpoint: Endpoint, outcome: int | Exception, *, taken: bool = False) -> None:
        self.failures[endpoint].append(Failure(outcome, taken))

    def paths(self, fragment: str) -> list[str]:
        """The paths of the requests received that contain ``fragment``."""
        return [request.url.path for request in self.requests if fragment in request.url.path]

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/invoke"):
            return self._invoke(json.loads(request.content)["message"], request)
        polled = _POLL.fullmatch(path)
        if polled:
            failure = self._next_failure("poll")
            if failure is not None:
                return _failed(failure, request)
            since, now = int(polled.group(1)), now_ms()
            visible = [e for e in self.events if since < int(e["created_at_timestamp"]) <= now]
            return httpx2.Response(200, json=visible)
        return httpx2.Response(404, json={"detail": "Not Found"})

    def _invoke(self, message: str, request: httpx2.Request) -> httpx2.Response:
        failure = self._next_failure("invoke")
        if failure is None or failure.taken:
            human = self.add("message", "human", message_id=f"m{len(self.events)}", message=message)
            sent_at = int(human["created_at_timestamp"])
            for after_ms, action_type, metadata in self.course:
                self.add(action_type, "ai", at=sent_at + after_ms, **metadata)
            self.course = []
        if failure is not None:
            return _failed(failure, request)
        body = {"message_id": human["metadata"]["message_id"], "created_at": human["created_at_timestamp"]}
        return httpx2.Response(200, json={**body, "cached_events": self.cached_events})

    def _next_failure(self, endpoint: Endpoint) -> Failure | None:
        queued = self.failures[endpoint]
        return queued.pop(0) if queued else None


def _failed(failure: Failure, request: httpx2.Request) -> httpx2.Response:
    if isinstance(failure.outcome, Exception):
        raise failure.outcome
    return httpx2.Response(failure.outcome, json={"detail": "stub failure"}, request=request)
