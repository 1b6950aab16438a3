import asyncio
import time
from collections.abc import Sequence

from flow_mcp import Cursor, FlowHuntClient, RawEvent, Settings, follow, normalize, send_message


async def show(events: Sequence[RawEvent], cursor: Cursor) -> None:
    for event in map(normalize, events):  # new events only, oldest first, each exactly once
        print(event.role, event.type, event.text or event.summary)


async def main() -> None:
    async with FlowHuntClient(Settings()) as flowhunt:
        session = await flowhunt.create_session()
        message = "Build a flow that answers FAQ from my docs"
        sent = await send_message(flowhunt, session.session_id, message, new_session=True)  # never sent twice
        await show(sent.events, sent.cursor)
        end = await follow(flowhunt, session.session_id, sent.cursor, on_events=show, deadline=time.monotonic() + 300)
        print("turn:", end.progress.outcome or "still running after five minutes")


asyncio.run(main())
