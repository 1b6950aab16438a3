"""A session's events as a readable markdown transcript, turn by turn. Pure: no I/O, no MCP.

A turn starts with a person's message; events before the first one (a welcome message, say) come
first. Each turn shows the message, the tools the assistant ran, the flow edits it made, its answers
and how the turn ended when it did not simply answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flow_mcp.flowhunt.digest import TurnDigest
from flow_mcp.flowhunt.events import clip, is_person_message, message_text
from flow_mcp.flowhunt.turn import TurnProgress, advance
from flow_mcp.flowhunt.wire import RawEvent


@dataclass
class _Turn:
    question: str | None = None  # None for what came before the first message
    events: list[RawEvent] = field(default_factory=list)


def split_turns(events: Sequence[RawEvent]) -> list[_Turn]:
    """Group events (oldest first) into turns, each opened by a human message."""
    turns: list[_Turn] = []
    for event in events:
        if is_person_message(event):
            turns.append(_Turn(question=message_text(event.meta) or ""))
        elif not turns:
            turns.append(_Turn())
        turns[-1].events.append(event)
    return turns


def transcript_markdown(session_id: str, events: Sequence[RawEvent]) -> str:
    """The whole session so far as markdown."""
    turns = split_turns(events)
    asked = sum(1 for turn in turns if turn.question is not None)
    lines = [f"# FlowHunt session {session_id}", "", f"{asked} turn(s), {len(events)} event(s)."]
    if not events:
        lines += ["", "Nothing has happened in this session yet."]
    number = 0
    for index, turn in enumerate(turns):
        if turn.question is None:
            lines += ["", "## Before the first message"]
        else:
            number += 1
            lines += ["", f"## Turn {number}", "", "**You:**", "", *_quoted(turn.question)]
        lines += _turn_body(turn, last=index == len(turns) - 1)
    return "\n".join(lines) + "\n"


def _turn_body(turn: _Turn, *, last: bool) -> list[str]:
    digest = TurnDigest(tool_output_limit=300)
    for event in turn.events:
        digest.add(event)
    progress = advance(TurnProgress(), turn.events, now_ms=0)
    lines: list[str] = []
    if digest.tool_calls:
        lines += ["", "Tools used:"]
        for call in digest.tool_calls:
            took = f" ({call.duration_ms / 1000:.1f} s)" if call.duration_ms is not None else ""
            query = f": {clip(call.input, 200)}" if call.input else ""
            lines.append(f"- `{call.name}`{took}{query}")
    if digest.actions:
        lines += ["", "Flow edits:"]
        lines += [f"- {action.summary}" for action in digest.actions]
    for message in digest.messages:
        lines += ["", "**Assistant:**", "", message.strip()]
    lines += _ending(progress, answered=bool(digest.messages), last=last, asked=turn.question is not None)
    return lines


def _ending(progress: TurnProgress, *, answered: bool, last: bool, asked: bool) -> list[str]:
    if progress.outcome == "failed":
        return ["", f"*The assistant failed: {progress.error or 'no details given'}*"]
    if progress.outcome == "session_closed":
        return ["", f"*Session closed: {progress.error or 'no details given'}*"]
    if progress.outcome == "waiting_for_input" and progress.waiting_for is not None:
        waiting = progress.waiting_for
        text = f"*Waiting for input ({waiting.kind}): {waiting.prompt or 'no prompt given'}*"
        return ["", text, *([f"Link: {waiting.link}"] if waiting.link else [])]
    if asked and last and (not answered or progress.open_tools):
        return ["", "*Still running: the assistant has not finished this turn yet.*"]
    return []


def _quoted(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in (text.strip() or "(empty message)").splitlines()]
