"""The two polling loops of today's public FlowHunt clients, as small plain httpx2 loops.

- ``fixed``: poll every 2 s (the pause starts when an answer arrives), give up after 300 s.
- ``desktop`` (FlowHunt's desktop app): poll every 0.5 s; once 10 polls in a row came back empty, each further
  empty poll multiplies the pause by 1.5, up to 5 s; a poll with events resets the pause to 0.5 s.

Both poll right after the invoke, advance ``from_timestamp`` to the newest event seen, drop events seen before
(by ``event_id``), and stop like FlowHunt's clients: on the first poll whose answer shows an ai ``message`` with no
tool call left open (or a ``failed`` event). They have no settle window.

Run as ``python -m bench.refloops SPEC``: SPEC is JSON (base_url, api_key, workspace_id, loop, message, starts =
one start delay in seconds per turn; optionally messages = one message per turn instead of the one message, and
t0_ms = the epoch ms the delays count from, so that loops in other processes start at the same moments). Every
turn runs concurrently; one JSON object goes to stdout, each turn tagged with its index in ``starts``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import httpx2

from bench.common import API_KEY, GIVE_UP_S, WORKSPACE, JSONDict, Sandbox, clean_env, now_ms


@dataclass
class Fixed:
    """Today's simplest client: a fixed pause."""

    interval: float = 2.0

    def next_pause(self, got_events: bool) -> float:
        return self.interval


@dataclass
class Desktop:
    """FlowHunt's desktop app: 0.5 s, x1.5 after 10 empty polls in a row, capped at 5 s, reset on events."""

    start: float = 0.5
    growth: float = 1.5
    cap: float = 5.0
    patience: int = 10
    interval: float = 0.5
    empty: int = 0

    def next_pause(self, got_events: bool) -> float:
        if got_events:
            self.empty, self.interval = 0, self.start
        else:
            self.empty += 1
            if self.empty >= self.patience:
                self.interval = min(self.cap, self.interval * self.growth)
        return self.interval


LOOPS = {"fixed": Fixed, "desktop": Desktop}


@dataclass
class Turn:
    """What one turn of a reference loop saw: when each event arrived, and when the loop returned."""

    session_id: str = ""
    receipts: dict[str, float] = field(default_factory=dict)
    done_ms: float | None = None
    polls: int = 0
    outcome: str = "timeout"
    index: int = 0


async def run_turn(http: httpx2.AsyncClient, spec: JSONDict, index: int) -> Turn:
    """Create a session, invoke, and poll with the spec's loop until the turn ends or 300 s pass."""
    delay = float(spec["starts"][index])
    if "t0_ms" in spec:
        delay -= (now_ms() - float(spec["t0_ms"])) / 1000
    await anyio.sleep(max(0.0, delay))
    message = spec["messages"][index] if "messages" in spec else spec["message"]
    policy = LOOPS[spec["loop"]]()
    auth = {"Authorization": f"Bearer {spec['api_key']}"}
    created = await http.post(
        "/v3/flow-assistants/create", params={"workspace_id": spec["workspace_id"]}, json={}, headers=auth
    )
    turn = Turn(session_id=created.raise_for_status().json()["session_id"], index=index)
    invoked = await http.post(f"/v3/flow-assistants/{turn.session_id}/invoke", json={"message": message})
    cursor = int(invoked.raise_for_status().json()["created_at"])
    open_tools: Counter[str] = Counter()
    answered = False
    give_up = time.monotonic() + GIVE_UP_S
    while time.monotonic() < give_up:
        response = await http.post(f"/v3/flow-assistants/{turn.session_id}/invocation_response/{cursor}")
        turn.polls += 1
        batch = response.raise_for_status().json()
        received = now_ms()
        fresh = [event for event in batch if event["event_id"] not in turn.receipts]
        for event in sorted(fresh, key=lambda e: int(e["created_at_timestamp"])):
            turn.receipts[event["event_id"]] = received
            cursor = max(cursor, int(event["created_at_timestamp"]))
            kind, name = event["action_type"], (event.get("metadata") or {}).get("tool_name", "tool")
            if kind == "v3_tool_call_start":
                open_tools[name] += 1
            elif kind == "v3_tool_call_end" and open_tools[name] > 0:
                open_tools[name] -= 1
            elif kind == "message" and event["event_type"] == "ai":
                answered = True
            elif kind == "failed":
                turn.outcome = "failed"
        if answered and not +open_tools and turn.outcome != "failed":
            turn.outcome = "completed"
        if turn.outcome != "timeout":
            turn.done_ms = received
            return turn
        await anyio.sleep(policy.next_pause(bool(fresh)))
    return turn


async def run_all(spec: JSONDict) -> JSONDict:
    """Every turn of the spec at once over one pooled client; CPU is this process's, over the turns only."""
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    turns: list[Turn] = []
    async with httpx2.AsyncClient(base_url=spec["base_url"], timeout=60, limits=limits) as http:
        cpu_before = time.process_time()

        async def one(index: int) -> None:
            turns.append(await run_turn(http, spec, index))

        async with anyio.create_task_group() as tasks:
            for index in range(len(spec["starts"])):
                tasks.start_soon(one, index)
        cpu = time.process_time() - cpu_before
    return {"cpu_s": cpu, "turns": [turn.__dict__ for turn in turns]}


async def run_worker(
    sandbox: Sandbox, loop: str, starts: Sequence[float], messages: Sequence[str], t0_ms: float | None = None
) -> JSONDict:
    """One worker process running ``loop`` for every turn (``messages[i]`` started ``starts[i]`` s after
    ``t0_ms``, or after the worker starts); its JSON output."""
    spec: JSONDict = {
        "base_url": sandbox.url,
        "api_key": API_KEY,
        "workspace_id": WORKSPACE,
        "loop": loop,
        "messages": list(messages),
        "starts": list(starts),
    }
    if t0_ms is not None:
        spec["t0_ms"] = t0_ms
    done = await anyio.run_process([sys.executable, "-m", "bench.refloops", json.dumps(spec)], env=clean_env())
    result: JSONDict = json.loads(done.stdout)
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    sys.stdout.write(json.dumps(anyio.run(run_all, spec)))


if __name__ == "__main__":
    main()
