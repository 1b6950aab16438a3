"""Published flows as tools of their own (FLOW_MCP_FLOW_TOOLS), through real MCP clients against the sandbox:
in memory, a stdio subprocess and a streamable-HTTP server, on both protocol generations.
Here the in-process tests; those with real processes: tests/e2e/test_flow_tools.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from flow_mcp.flowhunt.catalogue import TOOL_NAME
from flow_mcp.sandbox import DEFAULT_FLOWS, SandboxConfig, SandboxServer
from flow_mcp.server.app import build_server

from ..support.servers import FAST_PACING, settings_for

pytestmark = pytest.mark.anyio

FAQ, SUPPORT, SALES_DASH, SALES, SCHEDULER, EMAIL, ECHO, REPORT = (flow.id for flow in DEFAULT_FLOWS)
CORE = {"create_session", "invoke", "poll_events", "ask", "list_flows", "run_flow", "respond"}
FLOW_ARGUMENTS = {"message", "session_id", "variables", "timeout_seconds"}
DEFAULT_NAMES = {
    "flow_faq_bot_en",
    "flow_zakaznicka_podpora",
    "flow_meeting_scheduler",
    "flow_customer_email_sender",
    "flow_echo_variables_attachments",
    "flow_quarterly_revenue_report_generator_for_the_central_european",
}
MODES = ["legacy", "auto"]  # 2025-11-25 (initialize handshake) and 2026-07-28
WAIT = 20  # seconds a test waits for a change at most


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def body_of(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = result.structured_content
    return body


async def tools_of(client: Client) -> dict[str, types.Tool]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


def flow_tools(tools: dict[str, types.Tool]) -> set[str]:
    return set(tools) - CORE


def flow_lists(sandbox: SandboxServer) -> int:
    return sum(1 for entry in sandbox.state.request_log() if entry["kind"] == "flow_list")


async def reads(sandbox: SandboxServer, count: int) -> None:
    """Until the sandbox has been asked for the flow listing ``count`` times."""
    with anyio.fail_after(WAIT):
        while flow_lists(sandbox) < count:  # noqa: ASYNC110 - the sandbox has no event to await
            await anyio.sleep(0.05)


async def publish(sandbox: SandboxServer, flow: dict[str, Any]) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.post("/_sandbox/flows", json=flow)
        assert response.is_success, response.text


async def unpublish(sandbox: SandboxServer, flow_id: str) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        response = await http.delete(f"/_sandbox/flows/{flow_id}")
        assert response.is_success, response.text


class Changes:
    """Counts notifications/tools/list_changed as a 2025-era client sees them (its message handler)."""

    def __init__(self) -> None:
        self.seen = 0
        self._event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.seen += 1
            self._event.set()

    async def wait(self) -> None:
        with anyio.fail_after(WAIT):
            await self._event.wait()
        self._event = anyio.Event()


@asynccontextmanager
async def told_of_a_change(client: Client, changes: Changes) -> AsyncIterator[None]:
    """The block's changes must reach ``client`` as a list_changed: on a listen stream (2026-07-28) or as a
    notification on the connection (2025-11-25)."""
    if client.session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        async with client.listen(tools_list_changed=True) as stream:
            yield
            with anyio.fail_after(WAIT):
                event = await anext(aiter(stream))
            assert event == ToolsListChanged()
    else:
        yield
        await changes.wait()


@asynccontextmanager
async def connected(settings: Any, mode: str = "auto", changes: Changes | None = None) -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode, message_handler=changes) as client:
        yield client


# -- which flows become tools, and what they look like -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_flow_tools_all_lists_each_published_flow_as_a_tool_beside_the_core_tools(
    sandbox: SandboxServer, mode: str
) -> None:
    async with connected(settings_for(sandbox, flow_tools="all"), mode) as client:
        tools = await tools_of(client)
    assert set(tools) >= CORE
    names = flow_tools(tools)
    assert len(names) == len(DEFAULT_FLOWS) and names >= DEFAULT_NAMES
    assert all(TOOL_NAME.fullmatch(name) for name in names)
    twins = sorted(names - DEFAULT_NAMES)
    assert len(twins) == 2 and all(name.startswith("flow_sales_bot_") for name in twins)  # Sales-Bot, Sales Bot
    faq, run_flow = tools["flow_faq_bot_en"], tools["run_flow"]
    assert faq.title == "FAQ Bot (EN)" and faq.description is not None
    for text in (FAQ, "Answers questions about our products", "Searches the product FAQ", "Ask a question about"):
        assert text in faq.description  # flow id, description, detailed description, input hint
    assert set(faq.input_schema["properties"]) == FLOW_ARGUMENTS and faq.input_schema["required"] == ["message"]
    assert "Ask a question about our products" in faq.input_schema["properties"]["message"]["description"]
    assert faq.output_schema == run_flow.output_schema  # the result is run_flow's
    assert faq.annotations is not None and faq.annotations.open_world_hint
    assert tools["flow_zakaznicka_podpora"].title == "Zákaznícka podpora ✓"


async def test_a_glob_ids_and_exclusions_choose_the_flows(sandbox: SandboxServer) -> None:
    async with connected(settings_for(sandbox, flow_tools="SALES*")) as client:
        assert {name[:15] for name in flow_tools(await tools_of(client))} == {"flow_sales_bot_"}
    async with connected(settings_for(sandbox, flow_tools=f"{ECHO}, faq bot (en)")) as client:
        assert flow_tools(await tools_of(client)) == {"flow_faq_bot_en", "flow_echo_variables_attachments"}
    async with connected(settings_for(sandbox, flow_tools="all", flow_tools_exclude=f"*bot*,{REPORT}")) as client:
        assert flow_tools(await tools_of(client)) == {
            "flow_zakaznicka_podpora",
            "flow_meeting_scheduler",
            "flow_customer_email_sender",
            "flow_echo_variables_attachments",
        }
    # One Sales Bot alone clashes with nobody: it gets the plain name.
    async with connected(settings_for(sandbox, flow_tools="sales bot")) as client:
        assert flow_tools(await tools_of(client)) == {"flow_sales_bot"}


async def test_flow_tools_are_off_by_default_and_read_at_the_first_tools_list_not_at_start(
    sandbox: SandboxServer,
) -> None:
    async with connected(settings_for(sandbox)) as client:
        assert set(await tools_of(client)) == CORE
    assert flow_lists(sandbox) == 0
    async with connected(settings_for(sandbox, flow_tools="all")) as client:
        await client.list_prompts()
        assert flow_lists(sandbox) == 0  # connected, and FlowHunt not asked yet
        await client.list_tools()
        await client.list_tools()
        assert flow_lists(sandbox) == 1  # then once, for every tools/list within the TTL


async def test_list_flows_names_the_tool_of_each_flow_once_flow_tools_are_listed(sandbox: SandboxServer) -> None:
    async with connected(settings_for(sandbox, flow_tools="faq*")) as client:
        await client.list_tools()
        listed = body_of(await client.call_tool("list_flows", {}))["flows"]
    assert {flow["flow_id"]: flow["tool_name"] for flow in listed if flow["tool_name"]} == {FAQ: "flow_faq_bot_en"}
    async with connected(settings_for(sandbox)) as client:
        assert all(flow["tool_name"] is None for flow in body_of(await client.call_tool("list_flows", {}))["flows"])


# -- calling a flow tool -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_flow_tool_runs_its_flow_as_run_flow_does_and_continues_its_session(
    sandbox: SandboxServer, mode: str
) -> None:
    progress: list[str | None] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with connected(settings_for(sandbox, flow_tools="all"), mode) as client:
        await client.list_tools()
        first = await client.call_tool(
            "flow_faq_bot_en", {"message": "What does it cost?"}, progress_callback=on_progress
        )
        body = body_of(first)
        assert body["status"] == "completed" and "What does it cost?" in body["answer"]
        assert text_of(first).startswith(body["answer"])  # run_flow's text: the answer first
        assert "Answer ready" in progress
        again = body_of(
            await client.call_tool("flow_faq_bot_en", {"message": "And in euros?", "session_id": body["session_id"]})
        )
        assert again["session_id"] == body["session_id"] and "And in euros?" in again["answer"]
        by_run_flow = body_of(await client.call_tool("run_flow", {"flow_id": FAQ, "message": "What does it cost?"}))
        assert set(by_run_flow) == set(body)
        echoed = body_of(
            await client.call_tool("flow_echo_variables_attachments", {"message": "hi", "variables": {"lang": "sk"}})
        )
        assert '"lang": "sk"' in echoed["answer"]
    sessions = [entry for entry in sandbox.state.request_log() if entry["kind"] == "flow_session_create"]
    assert len(sessions) == 3  # FAQ twice (the flow tool's second call continued its session), Echo once


async def test_a_flow_tool_refuses_what_it_does_not_take_and_a_name_it_does_not_know(sandbox: SandboxServer) -> None:
    async with connected(settings_for(sandbox, flow_tools="faq*")) as client:
        await client.list_tools()
        extra = await client.call_tool("flow_faq_bot_en", {"message": "hi", "flow_id": ECHO})
        assert extra.is_error and "flow_id" in text_of(extra) and "message, session_id" in text_of(extra)
        files = await client.call_tool("flow_faq_bot_en", {"message": "hi", "attachments": []})
        assert files.is_error and f'run_flow(flow_id="{FAQ}"' in text_of(files)
        unknown = await client.call_tool("flow_sales_bot", {"message": "hi"})  # a flow not chosen
        assert unknown.is_error and "list_flows" in text_of(unknown)
        wrong_type = await client.call_tool("flow_faq_bot_en", {"message": 42})
        assert wrong_type.is_error and "message" in text_of(wrong_type)
        assert "pydantic" not in text_of(wrong_type).lower()  # run_flow's own argument text
        missing = await client.call_tool("flow_faq_bot_en", {})
        assert missing.is_error and "message" in text_of(missing)
    assert not [entry for entry in sandbox.state.request_log() if entry["kind"] == "flow_session_create"]


async def test_a_flow_tool_called_before_any_tools_list_still_runs(sandbox: SandboxServer) -> None:
    # A host that remembers tool names from an earlier run may call one before it lists the tools again.
    async with connected(settings_for(sandbox, flow_tools="all")) as client:
        assert body_of(await client.call_tool("flow_faq_bot_en", {"message": "hi"}))["status"] == "completed"


# -- changes, and FlowHunt failing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_flow_published_later_appears_after_the_ttl_and_clients_hear_list_changed(
    sandbox: SandboxServer, mode: str
) -> None:
    changes = Changes()
    async with connected(settings_for(sandbox, flow_tools="all", flow_tools_ttl=1), mode, changes) as client:
        assert len(flow_tools(await tools_of(client))) == len(DEFAULT_FLOWS)
        async with told_of_a_change(client, changes):
            await publish(sandbox, {"id": "fresh-flow", "name": "Fresh Flow", "description": "Just published."})
        tools = await tools_of(client)
        assert "flow_fresh_flow" in tools and "Just published." in (tools["flow_fresh_flow"].description or "")
        assert body_of(await client.call_tool("flow_fresh_flow", {"message": "hi"}))["status"] == "completed"
        async with told_of_a_change(client, changes):
            await unpublish(sandbox, "fresh-flow")
        assert "flow_fresh_flow" not in await tools_of(client)
        gone = await client.call_tool("flow_fresh_flow", {"message": "hi"})
        assert gone.is_error and "list_flows" in text_of(gone)


async def test_no_list_changed_is_sent_while_the_flows_stay_the_same(sandbox: SandboxServer) -> None:
    changes = Changes()
    async with connected(settings_for(sandbox, flow_tools="all", flow_tools_ttl=1), "legacy", changes) as client:
        await client.list_tools()
        before = flow_lists(sandbox)
        await reads(sandbox, before + 2)
        await client.list_prompts()  # a notification sent before this answer would have arrived before it
    assert changes.seen == 0


async def test_a_failing_listing_leaves_the_core_tools_working_and_the_flow_tools_come_back(
    sandbox: SandboxServer,
) -> None:
    changes = Changes()
    sandbox.state.update_config({"out_of_credits": "flow_list"})
    async with connected(settings_for(sandbox, flow_tools="all", flow_tools_ttl=1), "legacy", changes) as client:
        assert set(await tools_of(client)) == CORE  # the listing failed (402): the core tools, nothing else
        assert body_of(await client.call_tool("ask", {"message": "hello"}))["status"] == "completed"
        async with told_of_a_change(client, changes):
            sandbox.state.update_config({"out_of_credits": ""})
        assert len(flow_tools(await tools_of(client))) == len(DEFAULT_FLOWS)
        # Failing again, the listing keeps the last good list.
        sandbox.state.update_config({"out_of_credits": "flow_list"})
        failed = flow_lists(sandbox)
        await reads(sandbox, failed + 2)
        assert len(flow_tools(await tools_of(client))) == len(DEFAULT_FLOWS)
        assert changes.seen == 1


async def test_a_flowhunt_that_is_not_there_leaves_the_core_tools_listed() -> None:
    with SandboxServer(SandboxConfig(pacing=FAST_PACING)) as gone:
        settings = settings_for(gone, flow_tools="all", max_retries=0)
    async with connected(settings) as client:  # the sandbox is stopped: nothing listens on its port
        with anyio.fail_after(WAIT):
            assert set(await tools_of(client)) == CORE
        called = await client.call_tool("flow_faq_bot_en", {"message": "hi"})
        assert called.is_error and "list_flows" in text_of(called)


# -- real processes: stdio and HTTP --------------------------------------------------------------------------------
