"""Sessions, their scheduled events, and the records tests read back (requests, invocations, faults).

An event is stored with its scheduled epoch-ms timestamp and is visible once the wall clock reaches it,
so events become visible in timestamp order and events sharing a millisecond become visible together.
No timers run: visibility is computed at poll time. The state is mutated from the server's event loop
and read from test threads, hence one lock around everything.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.script import ScriptedEvent, script_turn, welcome_script

JSONDict = dict[str, object]

FAULT_KINDS = ("429", "503", "stall", "500", "reset", "truncated", "wrong_shape")
_FAULT_RATE = {
    "429": "rate_429",
    "503": "rate_503",
    "stall": "rate_stall",
    "500": "rate_500",
    "reset": "rate_reset",
    "truncated": "rate_truncated",
    "wrong_shape": "rate_wrong_shape",
}


def wall_clock_ms() -> int:
    """Epoch milliseconds, the unit of every FlowHunt timestamp."""
    return time.time_ns() // 1_000_000


@dataclass
class ScheduledEvent:
    """An event and the millisecond it becomes visible."""

    seq: int
    timestamp_ms: int
    payload: JSONDict


@dataclass
class Invocation:
    """One invoke the sandbox accepted (a second one with the same message is a double send)."""

    message_id: str
    message: str
    ai_model: str | None
    created_at_ms: int
    overlapped_previous_turn: bool
    fault: str | None

    def as_dict(self) -> JSONDict:
        """JSON-ready form for the control endpoint."""
        return {
            "message_id": self.message_id,
            "message": self.message,
            "ai_model": self.ai_model,
            "created_at": str(self.created_at_ms),
            "overlapped_previous_turn": self.overlapped_previous_turn,
            "fault": self.fault,
        }


@dataclass
class Session:
    """A Flow Assistant session."""

    session_id: str
    workspace_id: str
    created_at: datetime
    context_flow_id: str | None
    events: list[ScheduledEvent] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    turns: int = 0
    turn_ends_at_ms: int = 0
    # The latest "now" a poll of this session has answered for; nothing may be scheduled at or before it,
    # or a client whose cursor already passed that millisecond would never see the event.
    horizon_ms: int = 0
    closes_at_ms: int | None = None


class SandboxState:
    """All mutable state of one sandbox: sessions, records, and the seeded random source of faults."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.requests: list[JSONDict] = []
        self.faults: list[JSONDict] = []
        self._lock = threading.RLock()
        self._seq = 0
        self._seed = config.seed
        self.rng = random.Random(config.seed)

    # --- configuration and records ---------------------------------------------------------------

    def update_config(self, changes: dict[str, object]) -> None:
        """Change knobs at runtime; a new seed restarts the random source so runs stay repeatable."""
        with self._lock:
            self.config.update(changes)
            if "seed" in changes:
                self._reseed()

    def reset(self, *, sessions: bool = False) -> None:
        """Forget recorded requests and faults (and, with ``sessions``, every session); restart the random source."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            if sessions:
                self.sessions.clear()
            self._reseed()

    def _reseed(self) -> None:
        self._seed = self.config.seed
        self.rng = random.Random(self._seed)

    def record_request(self, method: str, path: str, query: str) -> JSONDict:
        """Log a request as it arrives; the caller fills in `status` (and `fault`) later."""
        entry: JSONDict = {"method": method, "path": path, "query": query, "status": None, "at_ms": self.clock()}
        with self._lock:
            self.requests.append(entry)
        return entry

    def set_status(self, entry: JSONDict, status: int) -> None:
        """Note the status a logged request was answered with."""
        with self._lock:
            entry["status"] = status

    def record_fault(self, kind: str, entry: JSONDict) -> None:
        """Note an injected fault, both on the request and in the fault list."""
        with self._lock:
            entry["fault"] = kind
            self.faults.append({"kind": kind, "method": entry["method"], "path": entry["path"]})

    def fault_counts(self) -> dict[str, int]:
        """Injected faults so far, by kind."""
        with self._lock:
            return dict(Counter(str(fault["kind"]) for fault in self.faults))

    def request_log(self) -> list[JSONDict]:
        """A copy of the request log."""
        with self._lock:
            return [dict(entry) for entry in self.requests]

    def draw_fault(self) -> str | None:
        """Roll the dice for one request; each enabled fault kind gets one draw, in a fixed order."""
        with self._lock:
            for kind in FAULT_KINDS:
                rate = float(getattr(self.config, _FAULT_RATE[kind]))
                if rate > 0 and self.rng.random() < rate:
                    return kind
            return None

    def choice(self, options: int) -> int:
        """A seeded pick in range(options), for fault details (which wrong shape, which Retry-After form)."""
        with self._lock:
            return self.rng.randrange(options)

    # --- the API ---------------------------------------------------------------------------------

    def create_session(self, context_flow_id: str | None, welcome: bool, workspace_id: str | None = None) -> Session:
        """Open a session, optionally scheduling the welcome message."""
        with self._lock:
            session = Session(
                session_id=str(uuid.uuid4()),
                workspace_id=workspace_id or self.config.workspace_id,
                created_at=datetime.now(UTC),
                context_flow_id=context_flow_id,
            )
            self.sessions[session.session_id] = session
            if welcome:
                start = self._next_ms(session)
                self._schedule(session, start, welcome_script(str(uuid.uuid4())), run_id=str(uuid.uuid4()))
            return session

    def get_session(self, session_id: str) -> Session | None:
        """The session, or None when unknown."""
        with self._lock:
            return self.sessions.get(session_id)

    def is_closed(self, session: Session) -> bool:
        """True once the session's `session_closed` event has become visible."""
        with self._lock:
            return session.closes_at_ms is not None and self.clock() >= session.closes_at_ms

    def invoke(self, session: Session, message: str, ai_model: str | None, fault: str | None) -> Invocation:
        """Record the human message at the invoke's `created_at`, then schedule the assistant's turn after it."""
        with self._lock:
            created_at = self._next_ms(session)
            message_id = str(uuid.uuid4())
            run_id = str(uuid.uuid4())
            invocation = Invocation(
                message_id=message_id,
                message=message,
                ai_model=ai_model,
                created_at_ms=created_at,
                overlapped_previous_turn=created_at < session.turn_ends_at_ms,
                fault=fault,
            )
            session.invocations.append(invocation)
            human = ScriptedEvent(0, "message", "human", {"message_id": message_id, "message": message})
            self._schedule(session, created_at, [human], run_id, min_offset_ms=0)
            course = script_turn(message, message_id, first_turn=session.turns == 0)
            session.turns += 1
            last = self._schedule(session, created_at, course, run_id)
            session.turn_ends_at_ms = max(session.turn_ends_at_ms, last)
            return invocation

    def poll(self, session: Session, from_ms: int) -> list[JSONDict]:
        """The events visible now and newer than `from_ms` (or at it, with the inclusive knob)."""
        with self._lock:
            now = self.clock()
            session.horizon_ms = max(session.horizon_ms, now)
            inclusive = self.config.inclusive_cursor
            batch = [
                event
                for event in session.events
                if event.timestamp_ms <= now
                and (event.timestamp_ms >= from_ms if inclusive else event.timestamp_ms > from_ms)
            ]
            batch.extend(self._duplicates(session, from_ms, now))
            if self.config.shuffle:
                self.rng.shuffle(batch)
            else:
                batch.sort(key=lambda event: (event.timestamp_ms, event.seq))
            return [dict(event.payload) for event in batch]

    def session_events(self, session: Session) -> list[JSONDict]:
        """Every event ever scheduled for the session, with whether it is visible yet."""
        with self._lock:
            now = self.clock()
            return [dict(event.payload, visible=event.timestamp_ms <= now) for event in session.events]

    def session_invocations(self, session: Session) -> list[JSONDict]:
        """Every invoke the session accepted, in order."""
        with self._lock:
            return [invocation.as_dict() for invocation in session.invocations]

    # --- internals -------------------------------------------------------------------------------

    def _duplicates(self, session: Session, from_ms: int, now: int) -> list[ScheduledEvent]:
        rate = self.config.duplicate_rate
        if rate <= 0 or self.rng.random() >= rate:
            return []
        seen = [event for event in session.events if event.timestamp_ms <= min(from_ms, now)]
        if not seen:
            return []
        return self.rng.sample(seen, min(len(seen), self.rng.randint(1, 3)))

    def _next_ms(self, session: Session) -> int:
        return max(self.clock(), session.horizon_ms + 1)

    def _schedule(
        self, session: Session, start_ms: int, course: list[ScriptedEvent], run_id: str, min_offset_ms: int = 1
    ) -> int:
        """Turn scripted offsets into timestamps; returns the last one. Offsets >= 1 keep replies after the invoke."""
        last = start_ms
        for scripted in course:
            timestamp = start_ms + max(min_offset_ms, round(scripted.offset_ms * self.config.pacing))
            self._seq += 1
            payload = self._payload(session, scripted, timestamp, run_id)
            session.events.append(ScheduledEvent(self._seq, timestamp, payload))
            if scripted.action_type == "session_closed":
                session.closes_at_ms = timestamp
            last = max(last, timestamp)
        return last

    def _payload(self, session: Session, scripted: ScriptedEvent, timestamp: int, run_id: str) -> JSONDict:
        payload: JSONDict = {
            "workspace_id": session.workspace_id,
            "session_id": session.session_id,
            "event_id": str(uuid.uuid4()),
            "event_type": scripted.event_type,
            "created_at_timestamp": str(timestamp),
            "action_type": scripted.action_type,
            "credits": scripted.credits,
            "metadata": scripted.metadata,
        }
        if scripted.component_name is not None:
            payload["component_name"] = scripted.component_name
        payload["run_id"] = run_id
        return payload
