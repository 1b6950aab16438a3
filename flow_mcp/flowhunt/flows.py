"""Published flows (V2): the listing read page by page, filtered, and described for a model; no MCP here.

FlowHunt pages the listing by cursor (inferred from its other paged searches): the next page starts after the flow
whose id is sent as ``pagination.scroll_id``, and a page shorter than ``limit`` is the last. A server that ignored
the cursor would send the first page again and again, so a page that brings no new flow ends the listing too, and
so does a bound on the number of pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio

from flow_mcp.errors import FlowHuntError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.wire import FlowDetail, FlowSummary

log = get_logger()

PAGE_SIZE = 100  # FlowHunt's own default page
MAX_PAGES = 50  # 5,000 flows; a listing that goes on is cut there, and says it has more
_DETAILS_AT_ONCE = 8


async def pages(
    client: FlowHuntClient, *, page_size: int = PAGE_SIZE, max_pages: int = MAX_PAGES, deadline: float | None = None
) -> AsyncIterator[list[FlowSummary]]:
    """The workspace's flows, a page at a time, each flow once."""
    seen: set[str] = set()
    scroll_id: str | None = None
    for _ in range(max_pages):
        page = await client.list_flows(page_size, scroll_id, deadline=deadline)
        fresh = [flow for flow in page if flow.id not in seen]
        seen.update(flow.id for flow in fresh)
        if fresh:
            yield fresh
        if len(page) < page_size or not fresh:
            return
        scroll_id = page[-1].id
    log.warning("flow_listing_cut", pages=max_pages)


def matches(flow: FlowSummary, query: str | None) -> bool:
    """Whether ``query`` is in the flow's name or description, ignoring case (no query: every flow)."""
    if not query:
        return True
    wanted = query.casefold()
    return wanted in flow.name.casefold() or wanted in flow.description.casefold()


async def find_flows(
    client: FlowHuntClient, query: str | None, limit: int, *, deadline: float | None = None
) -> tuple[list[FlowSummary], bool]:
    """The first ``limit`` flows that match ``query``, in FlowHunt's order, and whether more match."""
    found: list[FlowSummary] = []
    async for page in pages(client, deadline=deadline):
        found += [flow for flow in page if matches(flow, query)]
        if len(found) > limit:
            return found[:limit], True
    return found, False


async def details(
    client: FlowHuntClient, flows: Sequence[FlowSummary], *, deadline: float | None = None
) -> dict[str, FlowDetail]:
    """The detail of each flow (its input hint), a few at a time; a flow whose detail fails is left out."""
    found: dict[str, FlowDetail] = {}
    limiter = anyio.CapacityLimiter(_DETAILS_AT_ONCE)

    async def fetch(flow_id: str) -> None:
        async with limiter:
            try:
                found[flow_id] = await client.get_flow(flow_id, deadline=deadline)
            except FlowHuntError as error:  # a hint is a nicety: the listing stands without it
                log.info("flow_detail_skipped", flow_id=flow_id, error_type=type(error).__name__)

    async with anyio.create_task_group() as tasks:
        for flow in flows:
            tasks.start_soon(fetch, flow.id)
    return found


@dataclass(frozen=True)
class FlowUpload:
    """A file to attach to a flow session, read and checked."""

    name: str
    content: bytes
    content_type: str
