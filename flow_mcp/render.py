"""Readable text for every tool result: many MCP hosts show only a tool's text, never its structured content."""

from __future__ import annotations

from flow_mcp.models import AskResult, CreateSessionResult, Event, InvokeResult, PollResult, WaitingFor


def continue_hint(session_id: str, cursor: str, wait_seconds: int = 30) -> str:
    return f'poll_events(session_id="{session_id}", cursor="{cursor}", wait_seconds={wait_seconds})'


def create_session_text(result: CreateSessionResult) -> str:
    return (
        f"Session {result.session_id} created in workspace {result.workspace_id}.\n"
        f'Next: ask(message=..., session_id="{result.session_id}"), or invoke + poll_events.'
    )


def invoke_text(result: InvokeResult) -> str:
    lines = [f"Message sent (message_id {result.message_id}). The assistant is working on it."]
    lines += _event_lines(result.events)
    lines.append(f"Next: {continue_hint(result.session_id, result.cursor)} until status is no longer 'running'.")
    return "\n".join(lines)


def poll_text(result: PollResult) -> str:
    lines: list[str] = []
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. {len(result.events)} new event(s).")
    lines += _event_lines(result.events)
    lines += _ending_lines(result.status, result.error, result.waiting_for)
    if result.more:
        lines.append(f"More events are waiting: {continue_hint(result.session_id, result.cursor, 0)}")
    elif result.status == "running":
        lines.append(f"Next: {continue_hint(result.session_id, result.cursor)}")
    return "\n".join(lines)


def ask_text(result: AskResult) -> str:
    lines: list[str] = []
    if result.answer:
        lines += [result.answer, ""]
    lines.append(f"Status: {result.status}. Session {result.session_id}, {result.events_count} event(s).")
    if result.tool_calls:
        lines.append("Tools used: " + ", ".join(call.name for call in result.tool_calls))
    if result.actions:
        lines.append("Flow edits: " + "; ".join(action.summary for action in result.actions))
    lines += _ending_lines(result.status, result.error, result.waiting_for)
    if result.status == "running":
        lines.append(
            "The turn is still running on FlowHunt and nothing is lost. "
            f"Continue with {continue_hint(result.session_id, result.cursor)} until status is no longer 'running'."
        )
    elif result.status in ("completed", "waiting_for_input"):
        lines.append(f'To continue the conversation: ask(message=..., session_id="{result.session_id}")')
    return "\n".join(lines)


def _event_lines(events: list[Event]) -> list[str]:
    return [f"- {event.summary}" for event in events]


def _ending_lines(status: str, error: str | None, waiting_for: WaitingFor | None) -> list[str]:
    lines: list[str] = []
    if status == "failed":
        lines.append(f"The assistant failed: {error or 'no details given'}")
    elif status == "session_closed":
        lines.append("The session is closed: start a new one with create_session or ask without session_id.")
    if waiting_for is not None:
        lines.append(f"The assistant is waiting for input ({waiting_for.kind}): {waiting_for.prompt or ''}".rstrip())
        if waiting_for.link:
            lines.append(f"Link: {waiting_for.link}")
        lines.append("Answer it in FlowHunt (this API has no resume call), or send a new message.")
    return lines
