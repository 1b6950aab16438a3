"""The session resources (transcript, events) and the flowhunt_assistant prompt, through a real MCP client."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from flow_mcp.sandbox import SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio

INVALID_PARAMS = -32602


def text(result: Any) -> str:
    (content,) = result.contents
    return str(content.text)


async def ask(client: Client, message: str, session_id: str | None = None) -> dict[str, Any]:
    arguments = {"message": message, **({"session_id": session_id} if session_id else {})}
    result = await client.call_tool("ask", arguments)
    assert not result.is_error and result.structured_content is not None
    return dict(result.structured_content)


async def test_the_server_lists_the_transcript_and_events_templates(client: Client) -> None:
    templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
    assert templates["flowhunt://sessions/{session_id}/transcript"].mime_type == "text/markdown"
    assert templates["flowhunt://sessions/{session_id}/events"].mime_type == "application/json"


async def test_the_transcript_shows_each_turn_with_message_tools_edits_and_answer(client: Client) -> None:
    first = await ask(client, "Build a FAQ bot")
    second = await ask(client, "Now make it fail please", first["session_id"])
    sid = first["session_id"]
    result = await client.read_resource(f"flowhunt://sessions/{sid}/transcript")
    assert result.contents[0].mime_type == "text/markdown"
    markdown = text(result)
    assert sid in markdown
    turn_one, turn_two = markdown.split("## Turn 1", 1)[1].split("## Turn 2", 1)
    assert "> Build a FAQ bot" in turn_one and first["answer"] in turn_one
    assert "`search_docs`" in turn_one and "Added component Chat Input" in turn_one
    assert "> Now make it fail please" in turn_two and second["status"] == "failed"
    assert second["error"] in turn_two


async def test_the_events_resource_is_json_with_every_event_once_and_a_cursor(
    client: Client, sandbox: SandboxServer
) -> None:
    asked = await ask(client, "Build a FAQ bot")
    sid = asked["session_id"]
    result = await client.read_resource(f"flowhunt://sessions/{sid}/events")
    assert result.contents[0].mime_type == "application/json"
    body = json.loads(text(result))
    assert body["session_id"] == sid
    ids = [event["event_id"] for event in body["events"]]
    session = sandbox.state.get_session(sid)
    assert session is not None
    visible = {event["event_id"] for event in sandbox.state.session_events(session) if event["visible"]}
    assert len(ids) == len(set(ids)) and set(ids) == visible
    assert [event["at"] for event in body["events"]] == sorted(event["at"] for event in body["events"])
    polled = await client.call_tool("poll_events", {"session_id": sid, "cursor": body["cursor"]})
    assert polled.structured_content is not None and polled.structured_content["events"] == []


async def test_a_running_turn_shows_as_still_running(client: Client) -> None:
    created = await client.call_tool("create_session", {})
    assert created.structured_content is not None
    sid = created.structured_content["session_id"]
    await client.call_tool("invoke", {"session_id": sid, "message": "a long one"})
    markdown = text(await client.read_resource(f"flowhunt://sessions/{sid}/transcript"))
    assert "> a long one" in markdown and "Still running" in markdown


@pytest.mark.parametrize("session_id", ["no-such-session", "bad%20id", "x" * 200])
async def test_an_unknown_or_malformed_session_is_a_clean_not_found_error(client: Client, session_id: str) -> None:
    for kind in ("transcript", "events"):
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"flowhunt://sessions/{session_id}/{kind}")
        assert raised.value.error.code == INVALID_PARAMS
        assert "Traceback" not in raised.value.error.message
    # The server keeps serving after a failed read.
    assert (await client.list_tools()).tools


async def test_an_unreachable_flowhunt_is_a_resource_error_not_a_crash(sandbox: SandboxServer) -> None:
    settings = settings_for(sandbox, base_url="http://127.0.0.1:9", max_retries=0)
    async with Client(build_server(settings)) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource("flowhunt://sessions/abc/transcript")
    assert "FLOWHUNT_BASE_URL" in raised.value.error.message


async def test_the_prompt_explains_ask_versus_invoke_and_poll_events(client: Client) -> None:
    prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
    assert "flowhunt_assistant" in prompts
    with anyio.fail_after(10):
        result = await client.get_prompt("flowhunt_assistant", {"task": "Build an FAQ bot"})
    body = result.messages[0].content.text  # type: ignore[union-attr]
    for name in ("ask", "invoke", "poll_events", "session_id", "running", "waiting_for_input"):
        assert name in body
    assert body.rstrip().endswith("Build an FAQ bot")
    plain = await client.get_prompt("flowhunt_assistant")
    assert "Build an FAQ bot" not in plain.messages[0].content.text  # type: ignore[union-attr]
