"""The scripted Flow Assistant: a pure function from a user message to a timed course of events.

A course is chosen by trigger words in the message (case-insensitive, whole words): the first row of
`SCENARIOS` whose trigger matches wins, and a message with no trigger gets the default course. Adding a
scenario means writing one builder and one table row. Offsets are milliseconds after the invoke, at
pacing 1.0; the state layer scales them and turns them into timestamps. `resume_course` writes what follows
a hook a person answered through resume-hook.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Metadata is usually an object, but the sandbox must also emit the odd shapes real servers may send.
Metadata = Mapping[str, object] | list[object] | str

ASSISTANT_NAME = "Flow Assistant"
MAX_SCRIPTED_EVENTS = 10_000


@dataclass(frozen=True)
class ScriptedEvent:
    """One event of a course, `offset_ms` after the invoke (at pacing 1.0)."""

    offset_ms: int
    action_type: str
    event_type: str
    metadata: Metadata
    component_name: str | None = None
    credits: float = 0


@dataclass
class Course:
    """Builder for a course: a running clock plus helpers for the usual event shapes."""

    message: str
    message_id: str
    sender: str = ASSISTANT_NAME
    clock_ms: int = 0
    events: list[ScriptedEvent] = field(default_factory=list)
    _counter: int = 0

    def emit(
        self,
        after_ms: int,
        action_type: str,
        event_type: str,
        metadata: Metadata,
        component_name: str | None = None,
        credits: float = 0,
    ) -> None:
        """Append an event `after_ms` after the previous one (0 = same millisecond)."""
        self.clock_ms += after_ms
        self.events.append(ScriptedEvent(self.clock_ms, action_type, event_type, metadata, component_name, credits))

    def new_id(self, kind: str) -> str:
        """An id derived from the message id, so a course stays a pure function of its inputs."""
        self._counter += 1
        return f"{kind}-{self.message_id[:8]}-{self._counter}"

    def prelude(self) -> None:
        """What a session's first turn starts with: the agent being set up."""
        for after, stage, event_type, text in (
            (40, "starting", "system", "Starting the Flow Assistant"),
            (120, "creating_agent", "flow_assistant_action", "Creating the agent"),
            (150, "ready", "flow_assistant_action", "Flow Assistant is ready"),
        ):
            self.emit(after, "v3_flow_assistant_init", event_type, {"stage": stage, "message": text})
        self.emit(
            60,
            "agent_initialized",
            "system",
            {"agent_name": ASSISTANT_NAME, "agent_type": "flow_assistant", "model": "Claude Sonnet 4.6"},
        )

    def loading(self, after_ms: int, tool_name: str, desc: str) -> None:
        """A `loading` hint telling the user what the assistant is about to do."""
        meta: dict[str, object] = {"message_id": self.message_id, "tool_name": tool_name, "loading_desc": desc}
        self.emit(after_ms, "loading", "ai", meta)

    def tool_call(
        self, after_ms: int, tool_name: str, query: str, duration_ms: int, response: str, credits: float = 0.5
    ) -> None:
        """A start/end pair `duration_ms` apart; the end carries the credits."""
        self.emit(after_ms, "v3_tool_call_start", "ai", {"tool_name": tool_name, "agent_query": query})
        end: dict[str, object] = {
            "tool_name": tool_name,
            "agent_query": query,
            "tool_response": response,
            "duration_ms": duration_ms,
        }
        self.emit(duration_ms, "v3_tool_call_end", "ai", end, credits=credits)

    def add_component(self, after_ms: int, component_type: str, display_name: str) -> str:
        """An `add_component` flow edit; returns the new component's id."""
        component_id = f"{component_type}-{self.new_id('c')}"
        meta: dict[str, object] = {
            "action_id": self.new_id("action"),
            "component_id": component_id,
            "component_type": component_type,
            "component_display_name": display_name,
        }
        self.emit(after_ms, "add_component", "flow_assistant_action", meta, component_name=display_name)
        return component_id

    def connect(self, after_ms: int, source: str, target: str) -> None:
        """An `add_connection` flow edit between two components."""
        meta: dict[str, object] = {
            "action_id": self.new_id("action"),
            "source_component_id": source,
            "target_component_id": target,
            "source_field_name": "message",
            "target_field_name": "input_value",
        }
        self.emit(after_ms, "add_connection", "flow_assistant_action", meta, component_name="Chat Output")

    def answer(self, after_ms: int, text: str, credits: float = 1.0) -> None:
        """An `ai` `message`: what clients treat as the assistant's answer."""
        meta: dict[str, object] = {
            "message_id": self.message_id,
            "message": text,
            "sender": {"sender_name": self.sender},
        }
        self.emit(after_ms, "message", "ai", meta, credits=credits)

    def standard_work(self) -> None:
        """The default middle of a turn: look something up, then edit the flow.

        The tool call's end and the first edit share one millisecond on purpose: real servers do this,
        and a client's cursor must cope with it.
        """
        self.loading(150, "search_docs", "Searching the FlowHunt documentation")
        self.tool_call(150, "search_docs", f"components for: {self.message}", 800, "Found 3 relevant components.")
        chat_input = self.add_component(0, "ChatInput", "Chat Input")
        chat_output = self.add_component(300, "ChatOutput", "Chat Output")
        self.connect(200, chat_input, chat_output)

    def quoted_answer(self) -> str:
        """The default answer, quoting the user's message so tests can tie answers to questions."""
        return (
            f'You asked: "{self.message}". I added a Chat Input and a Chat Output component to the flow '
            "and connected them."
        )


Builder = Callable[[Course], None]


@dataclass(frozen=True)
class Scenario:
    """A table row: when `trigger` matches the message, `build` writes the course."""

    name: str
    trigger: re.Pattern[str]
    build: Builder


def script_turn(message: str, message_id: str, first_turn: bool) -> list[ScriptedEvent]:
    """The assistant's events for one invoke, in time order (offsets are non-decreasing)."""
    course = Course(message=message, message_id=message_id)
    scenario = choose_scenario(message)
    small = scenario.name == "events" and _requested_count(message) < _PRELUDE_SIZE
    if first_turn and not small and scenario.name != "timeline":
        course.prelude()
    scenario.build(course)
    return course.events


def welcome_script(message_id: str) -> list[ScriptedEvent]:
    """The welcome message a session created with `start_with_welcome_message` receives."""
    course = Course(message="", message_id=message_id)
    course.answer(80, "Hi! I am the Flow Assistant. Tell me what your flow should do.", credits=0)
    return course.events


def resume_course(
    waiting: WaitingEvent, message: str, form_data: Mapping[str, object] | None, sender: str, message_id: str
) -> list[ScriptedEvent]:
    """What follows a resumed hook: a little more work, then an answer quoting the person's message.

    An approval is granted by `form_data.approved` (a boolean) or, without it, by a message starting with
    approve/approved/yes/ok; anything else rejects, and the answer says which it was.
    """
    course = Course(message=message, message_id=message_id, sender=sender)
    if waiting.action_type != "hitl_approval_requested":
        course.loading(100, "continue", "Continuing with your answer")
        course.tool_call(100, "use_answer", message, 300, "Answer taken into account.", credits=0.2)
        course.answer(300, f'Thank you. You answered: "{message}". I went on with it and finished.')
        return course.events
    tool_name = str(waiting.metadata.get("tool_name"))
    if _approved(message, form_data):
        args = json.dumps(waiting.metadata.get("tool_args"), sort_keys=True, ensure_ascii=False)
        course.tool_call(100, tool_name, args, 300, f"{tool_name} done.", credits=0.5)
        course.answer(300, f'Approved: I ran {tool_name}. Your message: "{message}".')
    else:
        reason = form_data.get("reason") if form_data else None
        because = f" Reason: {reason}." if isinstance(reason, str) and reason else ""
        course.answer(200, f'Rejected: I did not run {tool_name}. Your message: "{message}".{because}')
    return course.events


@dataclass(frozen=True)
class WaitingEvent:
    """The event a turn waits on: its type and metadata (hook_id, and for an approval the tool it asks about)."""

    action_type: str
    metadata: Mapping[str, object]


_YES = frozenset({"approve", "approved", "yes", "ok", "y"})


def _approved(message: str, form_data: Mapping[str, object] | None) -> bool:
    decided = form_data.get("approved") if form_data else None
    if isinstance(decided, bool):
        return decided
    words = re.findall(r"\w+", message.lower())
    return bool(words) and words[0] in _YES


def choose_scenario(message: str) -> Scenario:
    """The first scenario whose trigger matches, else the default one."""
    for scenario in SCENARIOS:
        if scenario.trigger.search(message):
            return scenario
    return DEFAULT_SCENARIO


# --- builders -------------------------------------------------------------------------------------


def _default(course: Course) -> None:
    course.standard_work()
    course.answer(600, course.quoted_answer())


def _fail(course: Course) -> None:
    course.loading(150, "search_docs", "Searching the FlowHunt documentation")
    course.tool_call(150, "search_docs", course.message, 500, "Error: the flow could not be validated.")
    reason = "the flow could not be validated (sandbox: triggered by 'fail')"
    failed = {"message": f"The assistant could not complete the request: {reason}"}
    course.emit(200, "failed", "system", failed)


def _hook(course: Course) -> None:
    course.loading(150, "ask_user", "Waiting for your input")
    prompt = "Which LLM should the flow use: GPT4.1 or Claude Sonnet 4.6?"
    hook = {"hook_id": course.new_id("hook"), "hook_name": "choose_model", "prompt_message": prompt}
    course.emit(300, "hook_waiting_for_input", "flow_assistant_action", hook)


def _approval(course: Course) -> None:
    course.standard_work()
    request: dict[str, object] = {
        "hook_id": course.new_id("hook"),
        "hitl_id": course.new_id("hitl"),
        "tool_name": "delete_component",
        "tool_args": {"component_id": "ChatInput-old"},
        "tool_description": "Delete the old Chat Input component",
    }
    course.emit(300, "hitl_approval_requested", "flow_assistant_action", request)


def _integration(course: Course) -> None:
    course.loading(150, "google_sheets", "Connecting to Google Sheets")
    missing = {"slug": "google-sheets", "integration_url": "https://app.flowhunt.io/integrations/google-sheets"}
    course.emit(300, "integration_missing", "flow_assistant_action", missing)


def _file_access(course: Course) -> None:
    course.loading(150, "read_document", "Reading the document")
    needed = {
        "document_id": course.new_id("doc"),
        "document_type": "google_drive",
        "message": "Grant access to the document so the assistant can read it.",
    }
    course.emit(300, "file_access_required", "flow_assistant_action", needed)


def _close_session(course: Course) -> None:
    _default(course)
    course.emit(200, "session_closed", "system", {"message": "The session was closed."})


def _long(course: Course) -> None:
    # Bursts of quick events separated by slow tool calls: about 60 s at pacing 1.0.
    for index, duration in enumerate((9000, 14000, 6000, 18000, 11000)):
        course.loading(200, "build_flow", f"Working on step {index + 1} of 5")
        course.emit(0, "agent_cot", "ai", {"cot_id": course.new_id("cot"), "content": f"Planning step {index + 1}."})
        todos = [{"content": f"Step {n + 1}", "status": "completed" if n < index else "pending"} for n in range(5)]
        course.emit(150, "todo_list", "ai", {"todo_id": "todo-long", "todos": todos})
        course.tool_call(250, "build_flow", f"step {index + 1}: {course.message}", duration, f"Step {index + 1} done.")
    course.answer(300, course.quoted_answer(), credits=3.0)


_PRELUDE_SIZE = 4
_COUNT = re.compile(r"events:(\d+)", re.IGNORECASE)


def _requested_count(message: str) -> int:
    match = _COUNT.search(message)
    return min(int(match.group(1)), MAX_SCRIPTED_EVENTS) if match else 0


def _events(course: Course) -> None:
    # N counts every assistant event before the answer, prelude included (it is skipped when N is smaller).
    remaining = _requested_count(course.message) - len(course.events)
    step = 0
    while remaining > 0:
        step += 1
        after = 0 if step % 5 == 0 else 5  # every fifth event shares a millisecond with the previous one
        if remaining >= 2 and step % 3 == 1:
            course.tool_call(after, "inspect_flow", f"batch {step}", 10, f"batch {step} ok", credits=0.1)
            remaining -= 2
        elif step % 3 == 2:
            course.emit(after, "agent_cot", "ai", {"cot_id": course.new_id("cot"), "content": f"Thought {step}."})
            remaining -= 1
        else:
            todos = [{"content": f"Task {step}", "status": "in_progress"}]
            course.emit(after, "todo_list", "ai", {"todo_id": "todo-events", "todos": todos})
            remaining -= 1
    course.answer(20, course.quoted_answer())


def _unknown(course: Course) -> None:
    # Shapes no SDK release knows: clients must pass them through untouched.
    course.loading(100, "search_docs", "Searching the FlowHunt documentation")
    course.emit(100, "quantum_leap", "flow_assistant_action", {"leap_id": course.new_id("leap"), "distance": 42})
    course.emit(100, "agent_cot", "observer", {"cot_id": course.new_id("cot"), "content": "Observing."})
    course.emit(100, "artefacts", "ai", [{"id": "a1", "name": "notes.txt"}, "loose item", 7])
    course.emit(0, "todo_list", "ai", "todo metadata as a bare string")
    course.answer(300, course.quoted_answer())


def _multi(course: Course) -> None:
    course.answer(200, "Let me look into that first.", credits=0.5)
    course.standard_work()
    course.answer(400, course.quoted_answer())


def _slow_tool(course: Course) -> None:
    course.loading(150, "run_flow", "Running the flow")
    course.tool_call(150, "run_flow", course.message, 4000, "The flow ran successfully.", credits=2.0)
    course.answer(300, course.quoted_answer())


def _words(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(rf"\b{re.escape(word)}\b" for word in words), re.IGNORECASE)


_BIG_OUTPUT_CHARS = 5 * 1024 * 1024


def _big_output(course: Course) -> None:
    # A tool that answers with 5 MB: clients must not keep (or pass on) all of it.
    course.loading(100, "export_flow", "Exporting the flow")
    course.tool_call(100, "export_flow", course.message, 500, "x" * _BIG_OUTPUT_CHARS, credits=1.0)
    course.answer(200, course.quoted_answer())


_TIMELINE = re.compile(r"^\s*timeline:", re.IGNORECASE)
_TIMELINE_TOKEN = re.compile(r"(start|end|edit|load|note|answer)\+([0-9]{1,7})(?::([A-Za-z0-9_.-]{1,64}))?")
_TIMELINE_STEPS = 2_000


def _timeline(course: Course) -> None:
    """A course written out in the message, for benchmarks that need turn shapes of their own.

    ``timeline: start+150:search_docs end+2000:search_docs edit+150 answer+400``: each token is an event
    ``after`` milliseconds after the previous one. ``start``/``end`` open and close a tool call (the end
    carries the measured ``duration_ms``), ``edit`` is a flow edit, ``load`` a loading hint, ``note`` a
    thought, ``answer`` the answer. No prelude: the message says everything. Unreadable tokens are skipped.
    """
    opened: dict[str, int] = {}
    for match in list(_TIMELINE_TOKEN.finditer(course.message))[:_TIMELINE_STEPS]:
        kind, after, name = match.group(1), int(match.group(2)), match.group(3) or "tool"
        if kind == "start":
            course.emit(after, "v3_tool_call_start", "ai", {"tool_name": name, "agent_query": f"step for {name}"})
            opened[name] = course.clock_ms
        elif kind == "end":
            duration = course.clock_ms + after - opened.pop(name, course.clock_ms + after)
            meta: dict[str, object] = {
                "tool_name": name,
                "agent_query": f"step for {name}",
                "tool_response": f"{name} done.",
                "duration_ms": duration,
            }
            course.emit(after, "v3_tool_call_end", "ai", meta, credits=0.1)
        elif kind == "edit":
            meta = {
                "action_id": course.new_id("action"),
                "component_id": "ChatOutput-timeline",
                "component_type": "ChatOutput",
                "parameter_values": {"step": len(course.events)},
            }
            course.emit(after, "update_component", "flow_assistant_action", meta, component_name="Chat Output")
        elif kind == "load":
            course.loading(after, name, f"Working on {name}")
        elif kind == "note":
            course.emit(after, "agent_cot", "ai", {"cot_id": course.new_id("cot"), "content": "Thinking."})
        else:
            course.answer(after, f"Done: {len(course.events)} steps of the timeline.", credits=0.2)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("timeline", _TIMELINE, _timeline),
    Scenario("events", _COUNT, _events),
    Scenario("long", _words("long"), _long),
    Scenario("fail", _words("fail"), _fail),
    Scenario("hook", _words("hook"), _hook),
    Scenario("approval", _words("approval"), _approval),
    Scenario("integration", _words("integration"), _integration),
    Scenario("file_access", re.compile(r"\bfile\s+access\b", re.IGNORECASE), _file_access),
    Scenario("unknown", _words("unknown"), _unknown),
    Scenario("multi", _words("multi"), _multi),
    Scenario("slow_tool", re.compile(r"\bslow\s+tool\b", re.IGNORECASE), _slow_tool),
    Scenario("big_output", re.compile(r"\bbig\s+output\b", re.IGNORECASE), _big_output),
    Scenario("close_session", re.compile(r"\bclose\s+session\b", re.IGNORECASE), _close_session),
)
DEFAULT_SCENARIO = Scenario("default", re.compile(r"(?!)"), _default)
