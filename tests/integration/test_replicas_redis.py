"""RedisCoordination against a real redis-server: two coordinations stand for two replicas of one server."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from flow_mcp.config import Settings, key_fingerprint
from flow_mcp.replicas import Held, coordination
from flow_mcp.replicas.shared import RedisCoordination

from ..support.redis_server import RedisServer
from .test_attack_findings import captured_logs

pytestmark = pytest.mark.anyio

# The loops below that wait on Redis's state (a lease's end, the probe's next ping) have no event to await: they
# ask again, each wait bounded by fail_after.

KEY = "fh-live-SECRET-9d8c7b6a5f4e3d2c1b0a"
FINGERPRINT = key_fingerprint(KEY)


def replica(redis_server: RedisServer, **overrides: Any) -> AbstractAsyncContextManager[RedisCoordination]:
    return replica_at(redis_server.url, **overrides)


@asynccontextmanager
async def replica_at(url: str, **overrides: Any) -> AsyncIterator[RedisCoordination]:
    values: dict[str, Any] = {"redis_url": SecretStr(url), "api_key": SecretStr(KEY), **overrides}
    shared = coordination(Settings(**values))
    assert isinstance(shared, RedisCoordination)
    async with shared:
        yield shared


async def test_two_replicas_draw_on_one_budget_per_key(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a, replica(redis_server) as b:
        # One request a second, a burst of one: what A takes, B must wait for.
        assert await a.bucket(FINGERPRINT, 1).take() == 0
        assert await b.bucket(FINGERPRINT, 1).take() > 0.5
        assert await b.bucket(key_fingerprint("another key"), 1).take() == 0  # each key its own budget


async def test_a_pause_one_replica_was_told_of_holds_back_the_other(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a, replica(redis_server) as b:
        await a.bucket(FINGERPRINT, 50).pause(5)
        theirs = b.bucket(FINGERPRINT, 50)
        assert await theirs.take() > 4  # the wait is the pause's, not the rate's
        assert theirs.paused_for > 4  # and the client's fail-fast check sees it too


async def test_a_held_session_is_refused_elsewhere_with_its_cursor_until_released(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a, replica(redis_server) as b:
        lease = await a.hold(FINGERPRINT, "session-1", check=False, position=lambda: "cursor-1")
        assert not isinstance(lease, Held)
        assert await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None) == Held("cursor-1", True)
        other = await b.hold(FINGERPRINT, "session-2", check=True, position=lambda: None)
        assert not isinstance(other, Held)
        await lease.release()
        mine = await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None)
        assert not isinstance(mine, Held)


async def test_a_hold_is_renewed_past_its_lease_and_lapses_when_its_replica_is_gone(redis_server: RedisServer) -> None:
    async with replica(redis_server, redis_lease_seconds=1) as b:
        async with replica(redis_server, redis_lease_seconds=1) as a:
            lease = await a.hold(FINGERPRINT, "session-1", check=False, position=lambda: "c")
            assert not isinstance(lease, Held)
            await anyio.sleep(2.5)  # two and a half leases: only renewals keep it
            assert isinstance(await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None), Held)
        # A is gone without releasing (as a killed process): the hold lapses with its lease.
        with anyio.fail_after(5):
            while isinstance(await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None), Held):  # noqa: ASYNC110
                await anyio.sleep(0.1)


async def test_a_turn_left_running_is_seen_by_every_replica(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a, replica(redis_server) as b:
        await a.leave(FINGERPRINT, "session-1", "cursor-9")
        assert await b.left_running(FINGERPRINT, "session-1") == "cursor-9"
        await b.leave(FINGERPRINT, "session-1", None)
        assert await a.left_running(FINGERPRINT, "session-1") is None


async def test_a_cancellation_sent_to_one_replica_reaches_the_others(redis_server: RedisServer) -> None:
    heard = anyio.Event()
    async with replica(redis_server) as a, replica(redis_server) as b:
        b.on_cancel(lambda digest: heard.set() if digest == "call-digest" else None)
        with anyio.fail_after(5):
            while not heard.is_set():  # B subscribes in the background: publish until it listens
                await a.cancel("call-digest")
                with anyio.move_on_after(0.1):
                    await heard.wait()


async def test_with_redis_stopped_each_replica_goes_on_alone_then_shares_again(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a, replica(redis_server) as b:
        redis_server.stop()
        with anyio.fail_after(2):  # nothing waits on a Redis that is gone
            assert await a.bucket(FINGERPRINT, 1).take() == 0
            assert await b.bucket(FINGERPRINT, 1).take() == 0  # its own budget now
            lease = await a.hold(FINGERPRINT, "session-1", check=True, position=lambda: None)
            assert not isinstance(lease, Held)
            assert isinstance(await a.hold(FINGERPRINT, "session-1", check=True, position=lambda: None), Held)
        assert a.health() == {"redis": "unavailable", "degraded": True}
        redis_server.start()
        with anyio.fail_after(10):
            while a.health()["degraded"] or b.health()["degraded"]:  # noqa: ASYNC110 -- the probe runs each second
                await anyio.sleep(0.1)
        assert a.health() == {"redis": "ok", "degraded": False}
        assert await a.bucket(FINGERPRINT, 1).take() == 0
        assert await b.bucket(FINGERPRINT, 1).take() > 0.5  # shared again
        # The hold A took while Redis was away is put into Redis by its renewals.
        with anyio.fail_after(10):
            while not isinstance(await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None), Held):  # noqa: ASYNC110
                await anyio.sleep(0.1)
        await lease.release()


async def test_a_redis_that_stops_answering_never_holds_a_call_past_the_timeout(redis_server: RedisServer) -> None:
    async with replica(redis_server, redis_timeout=0.3) as a:
        redis_server.freeze()
        try:
            started = time.monotonic()
            with anyio.fail_after(3):
                assert await a.bucket(FINGERPRINT, 1).take() == 0
                assert not isinstance(await a.hold(FINGERPRINT, "s", check=True, position=lambda: None), Held)
                await a.leave(FINGERPRINT, "s", "c")
                assert await a.left_running(FINGERPRINT, "s") == "c"
            assert a.health()["degraded"]
            assert time.monotonic() - started < 3
        finally:
            redis_server.thaw()
        with anyio.fail_after(10):
            while a.health()["degraded"]:  # noqa: ASYNC110 -- the probe runs each second
                await anyio.sleep(0.1)


async def test_what_redis_holds_never_names_the_key_and_always_expires(redis_server: RedisServer) -> None:
    async with replica(redis_server) as a:
        bucket = a.bucket(FINGERPRINT, 5)
        await bucket.take()
        await bucket.pause(3)
        await a.hold(FINGERPRINT, "session-1", check=False, position=lambda: "cursor-1")
        await a.leave(FINGERPRINT, "session-2", "cursor-2")
        with redis_server.client() as plain:
            keys = plain.keys("*")
            assert len(keys) == 4
            for key in keys:
                assert KEY not in key and plain.pttl(key) > 0
                stored = plain.hgetall(key) if plain.type(key) == "hash" else {"": plain.get(key)}
                assert not any(KEY in str(value) for value in stored.values())


async def test_a_hold_given_up_while_redis_sat_on_it_leaves_the_session_free(redis_server: RedisServer) -> None:
    # A call cancelled (its client gone) while Redis was slow to answer its hold: nobody follows that session, so
    # this replica must not go on refusing it once the hold Redis may have taken meanwhile has lapsed.
    async with replica(redis_server, redis_timeout=2, redis_lease_seconds=1) as a:
        redis_server.freeze()
        try:
            with anyio.move_on_after(0.3):  # the cancellation, well within the timeout
                await a.hold(FINGERPRINT, "session-1", check=True, position=lambda: None)
        finally:
            redis_server.thaw()
        with anyio.fail_after(10):
            while isinstance(await a.hold(FINGERPRINT, "session-1", check=True, position=lambda: None), Held):  # noqa: ASYNC110
                await anyio.sleep(0.1)


async def test_many_calls_at_once_share_through_redis_without_opening_the_circuit(redis_server: RedisServer) -> None:
    # Many tool calls starting together each hold their session at once: a busy moment, not an outage, so every
    # hold must be in Redis, seen by the other replica, and this replica must not go on alone.
    sessions = [f"session-{n}" for n in range(300)]
    # A timeout generous for a loaded machine: the 101st connection was refused at once, however long it may take.
    async with replica(redis_server, redis_timeout=5) as a, replica(redis_server, redis_timeout=5) as b:
        async with anyio.create_task_group() as calls:
            for session in sessions:
                calls.start_soon(partial(a.hold, FINGERPRINT, session, check=True, position=lambda: None))
        assert a.health()["degraded"] is False
        for session in sessions:
            assert isinstance(await b.hold(FINGERPRINT, session, check=True, position=lambda: None), Held), session


async def test_a_released_hold_is_never_taken_again_by_a_renewal(redis_server: RedisServer) -> None:
    # Turns on one replica end while its renewals run (each turn moves on, so each renews every 0.2 s): a renewal
    # must not put a hold its call has released back into Redis, where nobody would renew or release it.
    positions = itertools.count()
    async with replica(redis_server, redis_timeout=5) as a:  # a busy machine must not open the circuit here

        async def turn(n: int) -> None:
            lease = await a.hold(FINGERPRINT, f"session-{n}", check=True, position=lambda: str(next(positions)))
            assert not isinstance(lease, Held)
            await anyio.sleep(0.2 + (n % 40) * 0.045)  # turns of different lengths, ending while renewals run
            await lease.release()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as turns:
                for n in range(300):
                    turns.start_soon(turn, n)
    with redis_server.client() as plain:
        assert plain.keys("*:turn:*") == []


async def test_a_message_on_the_cancel_channel_that_is_not_text_leaves_the_replica_listening(
    redis_server: RedisServer,
) -> None:
    heard = anyio.Event()
    channel = f"flow-mcp:{FINGERPRINT}:cancel"  # as docs/replicas.md names it
    async with replica(redis_server) as a, replica(redis_server) as b:
        b.on_cancel(lambda digest: heard.set() if digest == "call-digest" else None)
        with redis_server.client() as plain, anyio.fail_after(10):
            while plain.publish(channel, b"\xff\xfe not UTF-8") < 2:  # noqa: ASYNC110 -- until both replicas listen
                await anyio.sleep(0.05)
            while not heard.is_set():
                await a.cancel("call-digest")
                with anyio.move_on_after(0.1):
                    await heard.wait()


async def test_credentials_redis_refuses_are_reported_with_the_setting_to_correct() -> None:
    # Waiting mends neither a wrong password nor a user without the commands: the warning names what to change.
    with RedisServer(password="the-right-one") as protected, captured_logs() as entries:
        with protected.client() as plain:
            plain.execute_command("ACL", "SETUSER", "pinger", "on", ">the-pinger-one", "~*", "+ping")
        for user, password in (("", "the-wrong-one"), ("", "the-right-one"), ("pinger", "the-pinger-one")):
            async with replica_at(f"redis://{user}:{password}@127.0.0.1:{protected.port}/0", redis_timeout=5) as shared:
                await shared.bucket(FINGERPRINT, 1).take()
                assert shared.health()["degraded"] is (password != "the-right-one")
    warnings = {entry["error_type"]: entry for entry in entries if entry["event"] == "redis_unavailable"}
    assert set(warnings) == {"AuthenticationError", "NoPermissionError"}
    assert all("FLOW_MCP_REDIS_URL" in warning["help"] for warning in warnings.values())
    assert not any(password in str(entries) for password in ("the-wrong-one", "the-right-one", "the-pinger-one"))


async def test_a_hold_lost_while_redis_was_emptied_is_taken_back_once_the_other_turn_ends(
    redis_server: RedisServer,
) -> None:
    # Redis restarted empty (or flushed) while A's turn runs: B starts a turn in the session before A's renewal puts
    # the hold back. Once B's turn ends, A's still runs: the session must be held again, not left open to all.
    async with (
        replica(redis_server, redis_lease_seconds=1) as a,
        replica(redis_server, redis_lease_seconds=1) as b,
        replica(redis_server, redis_lease_seconds=1) as c,
    ):
        running = await a.hold(FINGERPRINT, "session-1", check=True, position=lambda: "cursor-a")
        assert not isinstance(running, Held)
        with redis_server.client() as plain:
            plain.flushall()
        with captured_logs() as entries:
            theirs = await b.hold(FINGERPRINT, "session-1", check=True, position=lambda: None)
            assert not isinstance(theirs, Held)
            with anyio.fail_after(10):  # A's renewal finds B's hold
                while not any(entry["event"] == "turn_hold_lost" for entry in entries):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
        await theirs.release()
        with anyio.fail_after(10):
            while True:
                found = await c.hold(FINGERPRINT, "session-1", check=True, position=lambda: None)
                if isinstance(found, Held):
                    break
                await found.release()  # a probe only: it must not keep A out
                await anyio.sleep(0.1)
        assert found == Held("cursor-a", elsewhere=True)
        await running.release()
