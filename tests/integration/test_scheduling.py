"""One request budget per key: a 429 pauses every turn of the key, not only the one that got it."""

from __future__ import annotations

import contextlib
import time

import anyio
import pytest

from flow_mcp.errors import RateLimitError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.sandbox import SandboxServer

from ..support.servers import settings_for

pytestmark = pytest.mark.anyio


async def test_a_429_pauses_every_turn_of_the_key_not_only_the_one_that_got_it(sandbox: SandboxServer) -> None:
    settings = settings_for(sandbox, max_retries=4, retry_max_seconds=10)

    async def keep_polling(client: FlowHuntClient, session_id: str) -> None:
        # Turns that poll all along: without a shared pause, some of their requests would land in a pause.
        until = time.monotonic() + 4
        while time.monotonic() < until:
            with contextlib.suppress(RateLimitError):  # running out of retries is fine here: timing is the point
                await client.poll(session_id, "0")

    async with FlowHuntClient(settings) as client:
        sessions = [(await client.create_session()).session_id for _ in range(4)]
        # Retry-After of 2 s: sent as an HTTP date (whole seconds) it still leaves more than the quiet window below.
        sandbox.state.update_config(
            {"rate_429": 0.05, "retry_after_s": 2.0, "seed": 3, "fault_only": "/invocation_response"}
        )
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for session_id in sessions:
                    tasks.start_soon(keep_polling, client, session_id)
    log = sorted(sandbox.state.request_log(), key=lambda entry: entry["at_ms"])
    refusals = [entry for entry in log if entry["status"] == 429]
    assert refusals
    for refusal in refusals:
        # Nothing of this key reaches FlowHunt while the Retry-After runs (a little slack for requests in flight).
        quiet_from, quiet_to = refusal["at_ms"] + 100, refusal["at_ms"] + 500
        assert not [entry for entry in log if quiet_from < entry["at_ms"] < quiet_to]
