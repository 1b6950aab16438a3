"""Published flows (FlowHunt's V2 API): the catalogue the sandbox serves and the scripted turn of each flow.

A flow is data (`PublishedFlow`); its `course` says how its turns go:

    answer    a few tool calls, then an answer quoting the message (and naming the session's attachments)
    ask       asks a question (`hook_waiting_for_input`) and waits; resuming the hook continues the turn
    approval  asks to approve a tool call (`hitl_approval_requested`) and waits; the resume says yes or no
    echo      answers with the session's variables and attachments

The assistant's trigger words (script.SCENARIOS: fail, long, events:N, hook, ...) work in flow sessions too and win
over the flow's course, so a client of flows can be tried on every course the assistant has.
The catalogue is DEFAULT_FLOWS, or the `flows` knob: a JSON list of objects with PublishedFlow's fields, of which
only `name` is required (`id` defaults to a new UUID, `workspace_id` to the sandbox's own workspace).
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_type_hints

from flow_mcp.sandbox.script import Course, ScriptedEvent, choose_scenario

JSONDict = dict[str, object]

FLOW_TYPES = ("p", "v")
_MODIFIED = "2025-05-12T08:30:00+00:00"
_EXECUTED = "2025-06-02T14:05:00+00:00"


@dataclass(frozen=True)
class PublishedFlow:
    """A flow as FlowHunt lists it, plus `course` and `workspace_id`, which only the sandbox reads."""

    id: str
    name: str
    description: str = ""
    course: str = "answer"
    flow_type: str = "p"
    component_count: int = 3
    executed_at: str | None = None
    category_id: str | None = None
    enable_cache: bool = False
    last_modified: str | None = _MODIFIED
    engine_version: str | None = "v3"
    integration_slugs: tuple[str, ...] = ()
    detailed_description: str | None = None
    try_flow_input_placeholder: str | None = None
    disable_text_input: bool = False
    workspace_id: str | None = None

    def summary(self) -> JSONDict:
        """FlowHunt's FlowResponse: every field present, null when unset (FastAPI's default)."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "flow_type": self.flow_type,
            "component_count": self.component_count,
            "executed_at": self.executed_at,
            "category_id": self.category_id,
            "enable_cache": self.enable_cache,
            "last_modified": self.last_modified,
            "engine_version": self.engine_version,
            "integration_slugs": list(self.integration_slugs),
        }

    def detail(self) -> JSONDict:
        """FlowHunt's FlowDetailResponse: the summary plus the texts a person sees and the flow's graph."""
        types = ["ChatInput", *(["AIAgent"] * max(0, self.component_count - 2)), "ChatOutput"][: self.component_count]
        nodes = [{"id": f"{kind}-{index}", "type": kind} for index, kind in enumerate(types, start=1)]
        edges = [{"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(nodes)]
        return self.summary() | {
            "detailed_description": self.detailed_description,
            "try_flow_input_placeholder": self.try_flow_input_placeholder,
            "disable_text_input": self.disable_text_input,
            "config": {"nodes": nodes, "edges": edges},
        }

    def control_view(self) -> JSONDict:
        """Everything, for /_sandbox/flows (the fields only the sandbox reads included)."""
        return self.detail() | {"course": self.course, "workspace_id": self.workspace_id}


def _flow(number: int, name: str, **fields: object) -> PublishedFlow:
    # Fixed ids, so tests and docs can name the default flows.
    return PublishedFlow(id=f"00000000-0000-4000-8000-00000000f{number:03d}", name=name, **fields)  # type: ignore[arg-type]


DEFAULT_FLOWS: tuple[PublishedFlow, ...] = (
    _flow(1, "FAQ Bot (EN)", description="Answers questions about our products from the FAQ.",
          category_id="cat-support", enable_cache=True, executed_at=_EXECUTED,
          detailed_description="Searches the product FAQ and answers in English. Repeated questions come from cache.",
          try_flow_input_placeholder="Ask a question about our products"),
    _flow(2, "Zákaznícka podpora ✓", description="Zákaznícka podpora v slovenčine: objednávky, doprava, reklamácie.",
          category_id="cat-support", try_flow_input_placeholder="Napíšte svoju otázku"),
    _flow(3, "Sales-Bot", description="Qualifies leads and suggests a plan.", category_id="cat-sales",
          try_flow_input_placeholder="Describe your company and what you need"),
    _flow(4, "Sales Bot", description="Answers pricing questions.", category_id="cat-sales", engine_version="v2"),
    _flow(5, "Meeting Scheduler", description="Books a meeting; asks which day and time suit you first.", course="ask",
          try_flow_input_placeholder="Who do you want to meet, and about what?"),
    _flow(6, "Customer Email Sender", description="Drafts a reply to a customer and sends it once you approve.",
          course="approval", integration_slugs=("gmail",),
          try_flow_input_placeholder="What should the email say?"),
    _flow(7, "Echo: variables & attachments", description="Repeats the message, variables and attachments it got.",
          course="echo", component_count=2),
    _flow(8, "Quarterly Revenue Report Generator for the Central European Sales Region — Detailed Edition",
          description="Builds the quarterly revenue report for the Central European region.", component_count=7,
          detailed_description="Collects the quarter's figures and compares them with the previous quarter."),
)  # fmt: skip


# --- parsing the `flows` knob ----------------------------------------------------------------------


def parse_flows(text: str) -> tuple[PublishedFlow, ...]:
    """The catalogue a `flows` knob describes: empty text means DEFAULT_FLOWS; raises ValueError when malformed."""
    if not text.strip():
        return DEFAULT_FLOWS
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("flows: expected a JSON list of flow objects") from None
    if not isinstance(data, list):
        raise ValueError("flows: expected a JSON list of flow objects")
    flows = tuple(flow_from_json(item) for item in data)
    ids = [flow.id for flow in flows]
    if len(ids) != len(set(ids)):
        raise ValueError("flows: two flows share one id")
    return flows


def flow_from_json(data: object) -> PublishedFlow:
    """One flow from a JSON object; every field but `name` is optional. Raises ValueError naming the bad field."""
    if not isinstance(data, dict):
        raise ValueError("a flow must be a JSON object")
    hints = get_type_hints(PublishedFlow)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ValueError(f"unknown flow fields {unknown}; known: {sorted(hints)}")
    values: dict[str, object] = {"id": str(uuid.uuid4()), **data}
    for name, value in values.items():
        if not _fits(hints[name], value):
            raise ValueError(f"flow field {name!r}: {value!r} is not a {hints[name]}")
    if not values.get("name"):
        raise ValueError("a flow needs a non-empty 'name'")
    if values.get("course", "answer") not in COURSES:
        raise ValueError(f"flow field 'course': expected one of {COURSES}")
    if values.get("flow_type", "p") not in FLOW_TYPES:
        raise ValueError(f"flow field 'flow_type': expected one of {FLOW_TYPES}")
    if "integration_slugs" in values:
        values["integration_slugs"] = tuple(values["integration_slugs"])  # type: ignore[arg-type]
    return PublishedFlow(**values)  # type: ignore[arg-type]


def _fits(kind: object, value: object) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == tuple[str, ...]:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    nullable = kind == str | None
    return isinstance(value, str) or (nullable and value is None)


class FlowCatalogue:
    """The published flows of every workspace; thread-safe (tests change it while the server runs)."""

    def __init__(self, flows: Iterable[PublishedFlow], home_workspace: Callable[[], str]) -> None:
        self._home = home_workspace  # flows without a workspace_id belong to the sandbox's own workspace
        self._lock = threading.Lock()
        self._flows = {flow.id: flow for flow in flows}

    def replace(self, flows: Iterable[PublishedFlow]) -> None:
        """Swap the whole catalogue."""
        with self._lock:
            self._flows = {flow.id: flow for flow in flows}

    def add(self, flows: Iterable[PublishedFlow]) -> None:
        """Add flows at the end of the listing (a flow with a known id replaces it in place)."""
        with self._lock:
            self._flows.update((flow.id, flow) for flow in flows)

    def remove(self, flow_id: str) -> bool:
        """Forget a flow; False when there was none with that id."""
        with self._lock:
            return self._flows.pop(flow_id, None) is not None

    def all(self) -> list[PublishedFlow]:
        """Every flow of every workspace, in listing order."""
        with self._lock:
            return list(self._flows.values())

    def get(self, flow_id: str, workspace_id: str) -> PublishedFlow | None:
        """The flow, when it exists in that workspace (a flow of another workspace is as unknown)."""
        with self._lock:
            flow = self._flows.get(flow_id)
        return flow if flow is not None and self._workspace(flow) == workspace_id else None

    def search(self, workspace_id: str, query: FlowQuery) -> list[PublishedFlow]:
        """One page: the workspace's flows that match, after the flow `scroll_id` names, at most `limit`."""
        found = [flow for flow in self.all() if self._workspace(flow) == workspace_id and query.matches(flow)]
        if query.scroll_id is not None:
            ids = [flow.id for flow in found]
            # An unknown cursor is past the end: an empty page, never the first page again (that would loop).
            found = found[ids.index(query.scroll_id) + 1 :] if query.scroll_id in ids else []
        return found[: query.limit]

    def _workspace(self, flow: PublishedFlow) -> str:
        return flow.workspace_id or self._home()


@dataclass(frozen=True)
class FlowQuery:
    """A validated list-flows body."""

    flow_type: str | None = None
    name: str | None = None
    category_id: str | None = None
    limit: int = 100
    scroll_id: str | None = None

    def matches(self, flow: PublishedFlow) -> bool:
        """The filters: equal flow_type and category_id, name as a case-insensitive substring."""
        return (
            (self.flow_type is None or flow.flow_type == self.flow_type)
            and (self.category_id is None or flow.category_id == self.category_id)
            and (self.name is None or self.name.casefold() in flow.name.casefold())
        )


# --- a flow's turn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowInputs:
    """What a flow session knows besides the message: its variables and the names of its attachments."""

    variables: Mapping[str, str]
    attachments: Sequence[str]

    def attachment_note(self) -> str:
        """A sentence naming the attachments, or nothing."""
        return f" I read your attachments: {', '.join(self.attachments)}." if self.attachments else ""


def flow_turn(flow: PublishedFlow, message: str, message_id: str, inputs: FlowInputs) -> list[ScriptedEvent]:
    """The events of one invoke of a flow session, in time order."""
    course = Course(message=message, message_id=message_id, sender=flow.name)
    scenario = choose_scenario(message)
    if scenario.name != "default":
        scenario.build(course)  # a trigger word: the assistant's course, without its set-up prelude
    else:
        _COURSES[flow.course](course, flow, inputs)
    return course.events


def cacheable_answers(events: Sequence[ScriptedEvent]) -> list[str] | None:
    """The answers of a turn a cache may keep: one that answered and neither failed nor waited on anyone."""
    kinds = {event.action_type for event in events}
    if "message" not in kinds or kinds & {"failed", "hook_waiting_for_input", "hitl_approval_requested"}:
        return None
    return [
        str(event.metadata.get("message"))
        for event in events
        if event.action_type == "message" and isinstance(event.metadata, Mapping)
    ]


def cached_turn(flow: PublishedFlow, message: str, message_id: str, answers: Sequence[str]) -> list[ScriptedEvent]:
    """A cache hit: the answers again, at once and without tool calls."""
    course = Course(message=message, message_id=message_id, sender=flow.name)
    for text in answers:
        course.answer(0, text, credits=0)
    return course.events


def _answer(course: Course, flow: PublishedFlow, inputs: FlowInputs) -> None:
    course.loading(100, "retrieve_documents", f"{flow.name}: looking it up")
    course.tool_call(100, "retrieve_documents", course.message, 400, "Found 2 matching documents.", credits=0.2)
    tool: JSONDict = {"tool_name": "llm", "agent_query": course.message, "tool_response": "Drafted an answer."}
    course.emit(150, "tool_call", "ai", tool, component_name="AI Agent", credits=0.3)
    text = f'{flow.name} answers "{course.message}": here is what I found.{inputs.attachment_note()}'
    course.answer(300, text)


def _ask(course: Course, flow: PublishedFlow, inputs: FlowInputs) -> None:
    course.loading(100, "ask_user", "Waiting for your answer")
    prompt = f"{flow.name} asks: which day and time suit you?"
    hook: JSONDict = {"hook_id": course.new_id("hook"), "hook_name": "ask_user", "prompt_message": prompt}
    course.emit(200, "hook_waiting_for_input", "ai", hook)


def _approval(course: Course, flow: PublishedFlow, inputs: FlowInputs) -> None:
    course.loading(100, "draft_email", "Drafting the email")
    course.tool_call(100, "draft_email", course.message, 300, "Draft ready.", credits=0.2)
    request: JSONDict = {
        "hook_id": course.new_id("hook"),
        "hitl_id": course.new_id("hitl"),
        "tool_name": "send_email",
        "tool_args": {"to": "customer@example.com", "subject": f"Re: {course.message[:60]}"},
        "tool_description": "Send the drafted email to the customer",
    }
    course.emit(200, "hitl_approval_requested", "ai", request)


def _echo(course: Course, flow: PublishedFlow, inputs: FlowInputs) -> None:
    variables = json.dumps(dict(inputs.variables), sort_keys=True, ensure_ascii=False)
    course.tool_call(100, "read_inputs", "variables and attachments", 50, variables, credits=0.1)
    attachments = ", ".join(inputs.attachments) or "none"
    course.answer(200, f'Echo: "{course.message}". Variables: {variables}. Attachments: {attachments}.')


_COURSES: dict[str, Callable[[Course, PublishedFlow, FlowInputs], None]] = {
    "answer": _answer,
    "ask": _ask,
    "approval": _approval,
    "echo": _echo,
}
COURSES = tuple(_COURSES)
