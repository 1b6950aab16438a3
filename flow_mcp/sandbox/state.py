"""The sandbox's state: sessions and their scheduled events, the flow catalogue, and the records tests read back.

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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from flow_mcp.sandbox.config import SandboxConfig
from flow_mcp.sandbox.flows import (
    FlowCatalogue,
    FlowInputs,
    PublishedFlow,
    cacheable_answers,
    cached_turn,
    flow_turn,
    parse_flows,
)
from flow_mcp.sandbox.script import (
    ASSISTANT_NAME,
    ScriptedEvent,
    WaitingEvent,
    resume_course,
    script_turn,
    welcome_script,
)
from flow_mcp.sandbox.sessions import (
    FLOW,
    HOOK_EVENTS,
    Hook,
    Invocation,
    JSONDict,
    ScheduledEvent,
    Session,
)

FAULT_KINDS = (
    "429", "503", "stall", "500", "reset", "truncated", "wrong_shape", "surrogate", "bad_utf8", "oversized", "drip",
)  # fmt: skip
_FAULT_RATE = {
    "429": "rate_429",
    "503": "rate_503",
    "stall": "rate_stall",
    "500": "rate_500",
    "reset": "rate_reset",
    "truncated": "rate_truncated",
    "wrong_shape": "rate_wrong_shape",
    "surrogate": "rate_surrogate",
    "bad_utf8": "rate_bad_utf8",
    "oversized": "rate_oversized",
    "drip": "rate_drip",
}


def wall_clock_ms() -> int:
    """Epoch milliseconds, the unit of every FlowHunt timestamp."""
    return time.time_ns() // 1_000_000


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
        self.catalogue = FlowCatalogue(parse_flows(config.flows), lambda: self.config.workspace_id)
        # (flow id, message) -> the answers a flow with enable_cache gave; shared by every session of the flow.
        self._answer_cache: dict[tuple[str, str], list[str]] = {}

    # --- configuration and records ---------------------------------------------------------------

    def update_config(self, changes: dict[str, object]) -> None:
        """Change knobs at runtime; a new seed restarts the random source so runs stay repeatable."""
        with self._lock:
            self.config.update(changes)
            if "seed" in changes:
                self._reseed()
            if "flows" in changes:
                self.catalogue.replace(parse_flows(self.config.flows))

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

    def record_request(self, method: str, path: str, query: str, kind: str | None) -> JSONDict:
        """Log a request as it arrives (`kind`: which API call, or None); `status` (and `fault`) come later."""
        entry: JSONDict = {
            "method": method,
            "path": path,
            "query": query,
            "kind": kind,
            "status": None,
            "at_ms": self.clock(),
        }
        with self._lock:
            self.requests.append(entry)
        return entry

    def set_status(self, entry: JSONDict, status: int) -> None:
        """Note the status a logged request was answered with."""
        self.note(entry, status=status)

    def note(self, entry: JSONDict, **fields: object) -> None:
        """Add details to a logged request (a resume's hook id and outcome, say)."""
        with self._lock:
            entry.update(fields)

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

    def create_flow_session(
        self, flow: PublishedFlow, variables: dict[str, str], flow_branch: str | None, workspace_id: str
    ) -> Session:
        """Open a session of a published flow; its turns follow the flow's course."""
        with self._lock:
            session = Session(
                session_id=str(uuid.uuid4()),
                workspace_id=workspace_id,
                created_at=datetime.now(UTC),
                context_flow_id=None,
                kind=FLOW,
                flow=flow,
                variables=dict(variables),
                flow_branch=flow_branch,
            )
            self.sessions[session.session_id] = session
            return session

    def get_session(self, session_id: str, kind: str | None = None) -> Session | None:
        """The session, or None when unknown (or not of `kind`, when given)."""
        with self._lock:
            session = self.sessions.get(session_id)
            return session if session is not None and kind in (None, session.kind) else None

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
            course, cached = self._course(session, message, message_id)
            session.turns += 1
            scheduled = self._schedule(session, created_at, course, run_id)
            self._extend_turn(session, scheduled)
            if cached:
                invocation.cached_events = [dict(event.payload) for event in scheduled]
            return invocation

    def _course(self, session: Session, message: str, message_id: str) -> tuple[list[ScriptedEvent], bool]:
        """A turn's events, and whether they came from the flow's answer cache."""
        flow = session.flow
        if flow is None:
            return script_turn(message, message_id, first_turn=session.turns == 0), False
        key = (flow.id, message)
        if flow.enable_cache and key in self._answer_cache:
            return cached_turn(flow, message, message_id, self._answer_cache[key]), True
        names = [str(attachment["file_name"]) for attachment in session.attachments]
        course = flow_turn(flow, message, message_id, FlowInputs(session.variables, names))
        answers = cacheable_answers(course)
        if flow.enable_cache and answers:
            self._answer_cache[key] = answers
        return course, False

    def add_attachment(self, session: Session, file_name: str, file_type: str, size: int) -> JSONDict:
        """Keep an uploaded file's description; the flow's later answers name it."""
        attachment: JSONDict = {
            "file_name": file_name,
            "file_type": file_type,
            "file_id": str(uuid.uuid4()),
            "type": "file",
            "source": "upload",
        }
        with self._lock:
            session.attachments.append(attachment | {"size": size})
        return attachment

    def resume_hook(self, session: Session, hook_id: str, message: str, form_data: dict[str, object] | None) -> str:
        """Answer a waiting hook once: `resumed` (the turn goes on), `already_received`, `expired` or `not_found`."""
        with self._lock:
            hook = session.hooks.get(hook_id)
            if hook is None:
                status = "not_found"
            elif hook.status != "waiting":
                status = "already_received" if hook.status == "resumed" else hook.status
            else:
                hook.status = status = "resumed"
                sender = session.flow.name if session.flow is not None else ASSISTANT_NAME
                course = resume_course(hook.waiting, message, form_data, sender, str(uuid.uuid4()))
                self._extend_turn(session, self._schedule(session, self._next_ms(session), course, hook.run_id))
            record: JSONDict = {"hook_id": hook_id, "message": message, "form_data": form_data, "status": status}
            session.resumes.append(record | {"at_ms": self.clock()})
            return status

    def cancel(self, session: Session) -> None:
        """Stop the running turn: what it has not shown yet never comes, and the hooks it waits on expire."""
        with self._lock:
            now = self.clock()
            session.events = [event for event in session.events if event.timestamp_ms <= now]
            for hook_id, hook in list(session.hooks.items()):
                if hook.visible_at_ms > now:
                    del session.hooks[hook_id]  # never seen, so never resumable
                elif hook.status == "waiting":
                    hook.status = "expired"
            if session.closes_at_ms is not None and session.closes_at_ms > now:
                session.closes_at_ms = None
            session.turn_ends_at_ms = min(session.turn_ends_at_ms, now)

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

    def session_resumes(self, session: Session) -> list[JSONDict]:
        """Every resume-hook the session received, in order, with the status it was answered."""
        with self._lock:
            return [dict(record) for record in session.resumes]

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
    ) -> list[ScheduledEvent]:
        """Turn scripted offsets into timestamps (offsets >= 1 keep replies after the invoke); note hooks and ends."""
        scheduled = []
        for scripted in course:
            timestamp = start_ms + max(min_offset_ms, round(scripted.offset_ms * self.config.pacing))
            self._seq += 1
            payload = self._payload(session, scripted, timestamp, run_id)
            scheduled.append(ScheduledEvent(self._seq, timestamp, payload))
            if scripted.action_type == "session_closed":
                session.closes_at_ms = timestamp
            metadata = scripted.metadata
            if scripted.action_type in HOOK_EVENTS and isinstance(metadata, Mapping):
                hook_id = metadata.get("hook_id")
                if isinstance(hook_id, str):
                    session.hooks[hook_id] = Hook(WaitingEvent(scripted.action_type, metadata), run_id, timestamp)
        session.events.extend(scheduled)
        return scheduled

    def _extend_turn(self, session: Session, scheduled: list[ScheduledEvent]) -> None:
        """The turn now lasts at least until the last of these events (a later invoke overlaps it before then)."""
        for event in scheduled:
            session.turn_ends_at_ms = max(session.turn_ends_at_ms, event.timestamp_ms)

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
