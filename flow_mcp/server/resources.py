"""MCP resources (a session's transcript and events, read from FlowHunt) and the ``flowhunt_assistant`` prompt."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import Resource
from pydantic import Field

from flow_mcp.config import Settings
from flow_mcp.errors import FlowMCPError, InvalidArgumentError, NotFoundError
from flow_mcp.flowhunt.cursor import Cursor
from flow_mcp.flowhunt.events import normalize
from flow_mcp.flowhunt.follow import now_ms, replay
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.transcript import transcript_markdown
from flow_mcp.flowhunt.wire import RawEvent
from flow_mcp.server.callers import Caller
from flow_mcp.server.paging import RESERVED_BYTES, fit, page
from flow_mcp.server.results import describe

log = get_logger()

TRANSCRIPT_URI = "flowhunt://sessions/{session_id}/transcript"
EVENTS_URI = "flowhunt://sessions/{session_id}/events"


CallerOf = Callable[[Context[Any]], AbstractAsyncContextManager[Caller]]


async def _read(ctx: Context[Any], caller_of: CallerOf, session_id: str) -> tuple[list[RawEvent], Cursor]:
    """Validate and replay, turning every failure into a clean resource error (never a traceback)."""
    try:
        async with caller_of(ctx) as caller:
            session = caller.session(session_id)
            events, cursor = await replay(caller.client, session.id, kind=session.kind)
    except (InvalidArgumentError, NotFoundError) as error:
        raise ResourceNotFoundError(describe(error, session_id=session_id)) from None
    except FlowMCPError as error:
        log.info("resource_failed", error_type=type(error).__name__)
        raise ResourceError(describe(error)) from None
    return events, cursor


def session_resources(session_ids: Iterable[str]) -> list[Resource]:
    """The transcript of each of these sessions (ids as their caller sees them), for resources/list."""
    return [
        Resource(
            uri=TRANSCRIPT_URI.format(session_id=sid),
            name=f"session_{sid}",
            title=f"FlowHunt session {sid}",
            description="The transcript of a FlowHunt session this server worked with. Markdown.",
            mime_type="text/markdown",
        )
        for sid in session_ids
    ]


def register_resources(mcp: MCPServer[Any], caller_of: CallerOf, settings: Settings) -> None:
    """Add the session resources and the prompt to ``mcp``; ``caller_of`` says who reads and with which client."""
    room = settings.max_result_bytes - RESERVED_BYTES

    @mcp.resource(
        TRANSCRIPT_URI,
        name="session_transcript",
        title="Session transcript",
        description="The turns of a FlowHunt session (the Flow Assistant's or a published flow's) so far: messages, "
        "tools used, flow edits, answers. Markdown.",
        mime_type="text/markdown",
    )
    async def transcript(session_id: str, ctx: Context[Any]) -> str:
        events, _ = await _read(ctx, caller_of, session_id)
        text: str = fit(transcript_markdown(session_id, events), room)
        return text

    @mcp.resource(
        EVENTS_URI,
        name="session_events",
        title="Session events",
        description="Every event of a FlowHunt session (the Flow Assistant's or a published flow's) so far, oldest "
        "first, normalized like "
        "poll_events' events, with a cursor to poll for newer ones. JSON. If `more` is true, the rest did not fit "
        "in one read: get it with poll_events from the cursor.",
        mime_type="application/json",
    )
    async def events(session_id: str, ctx: Context[Any]) -> str:
        raw, cursor = await _read(ctx, caller_of, session_id)
        shown, more = page([normalize(event) for event in raw], room)
        if more:
            cursor = Cursor(timestamp=0).accept(raw[: len(shown)], now_ms=now_ms())[1]
        body = {
            "session_id": session_id,
            "events": [event.model_dump(mode="json") for event in shown],
            "cursor": cursor.encode(),
            "more": more,
        }
        return json.dumps(body, ensure_ascii=False)

    @mcp.prompt(
        name="flowhunt_assistant",
        title="Work with FlowHunt's Flow Assistant",
        description="Primes the model on using the FlowHunt tools: ask for whole turns, run_flow for published "
        "flows, invoke + poll_events for step-by-step control, respond to waiting turns, long turns.",
    )
    def flowhunt_assistant(
        task: Annotated[str, Field(description="What you want built or changed, if you know already.")] = "",
    ) -> str:
        return ASSISTANT_PROMPT + (f"\n\nThe task: {task.strip()}" if task.strip() else "")


ASSISTANT_PROMPT = """\
You can work with FlowHunt's AI Flow Assistant, which builds and edits FlowHunt flows (AI agents), and run the \
flows a workspace has published, through these tools:

- `ask(message, session_id?)`: the default for the assistant. One call runs a whole turn and returns the \
assistant's answer, the tools it used and the flow edits it made. Pass the returned `session_id` to the next `ask` \
to continue the same conversation; omit it only to start a new one.
- `list_flows(query?)` and `run_flow(flow_id, message, variables?, session_id?, attachments?)`: find a published \
flow and run it; the result is like `ask`'s. Continue a flow's conversation with `run_flow` and its `session_id`.
- If a turn returns status "running", it goes on in FlowHunt and nothing is lost: call \
`poll_events(session_id, cursor, wait_seconds=30)` with the returned cursor, again with each new cursor, until \
the status is no longer "running". Do not send the message again.
- `create_session` + `invoke` + `poll_events`: use them instead of `ask` when you want control of each step, \
e.g. to show events as they come or to do other work while the assistant runs. `invoke` returns at once with a \
cursor; follow it with `poll_events` as above.
- Status "waiting_for_input" means the turn needs a person. With a `hook_id` in `waiting_for` (a question or an \
approval), ask the user and answer with `respond(session_id, hook_id, message)` (for an approval: "approve" or \
"reject: <reason>"); a hook takes one answer. Without a hook_id (an integration to connect, a file to share), \
tell the user what `waiting_for` says and the link; once they have done it, send a new message.
- Status "failed" or "session_closed": report the error; start a new session (`ask` or `run_flow` without \
`session_id`) if the user wants to go on.
- The resources flowhunt://sessions/{session_id}/transcript (markdown) and .../events (JSON) show a whole \
session so far.

Tell the user what the assistant built (the flow edits) or what the flow did, and its answer, in your own words."""
