"""Drive flow_mcp from your own agent code with the official MCP Python SDK client, over stdio.

    python examples/agent_client.py "Build a flow that answers FAQ from my docs"            # FLOWHUNT_API_KEY set
    python examples/agent_client.py "Build a flow that answers FAQ from my docs" --sandbox  # no account needed

It starts `flow-mcp serve` as a subprocess (the interpreter running this script, `-m flow_mcp`), calls `ask`,
and if the turn is still running when `ask` returns, follows it with `poll_events` until it is done: the same
pattern an agent framework uses (LangChain's MCP adapters, the OpenAI Agents SDK and others take the same
command, args and env).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters


async def run(question: str, sandbox: bool) -> int:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "flow_mcp", "serve", *(["--sandbox"] if sandbox else [])],
        env=dict(os.environ),  # the server reads FLOWHUNT_API_KEY and friends from here
    )

    async def show(progress: float, total: float | None, message: str | None) -> None:
        print(f"  … {message}", file=sys.stderr)

    async with Client(server) as client:
        result = await client.call_tool("ask", {"message": question}, progress_callback=show)
        body: dict[str, Any] = result.structured_content or {}
        # A host-imposed time limit is why ask may return early; the cursor continues the same turn.
        with anyio.fail_after(600):
            while not result.is_error and body.get("status") == "running":
                print("  (still running: following with poll_events)", file=sys.stderr)
                result = await client.call_tool(
                    "poll_events",
                    {"session_id": body["session_id"], "cursor": body["cursor"], "wait_seconds": 30},
                )
                update: dict[str, Any] = result.structured_content or {}
                body = {**body, **{k: v for k, v in update.items() if v is not None}}
        if result.is_error:
            print("".join(getattr(block, "text", "") for block in result.content), file=sys.stderr)
            return 1
        print(body.get("answer") or "(no answer)")
        print(f"status: {body.get('status')}, session: {body.get('session_id')}", file=sys.stderr)
        return 0 if body.get("status") in ("completed", "waiting_for_input") else 1


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--sandbox"]
    if len(args) != 1:
        sys.exit(f"usage: {sys.argv[0]} MESSAGE [--sandbox]")
    sys.exit(anyio.run(run, args[0], "--sandbox" in sys.argv[1:]))


if __name__ == "__main__":
    main()
