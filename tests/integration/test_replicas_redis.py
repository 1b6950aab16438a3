"""RedisCoordination against a real redis-server: two coordinations stand for two replicas of one server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from flow_mcp.config import Settings, key_fingerprint
from flow_mcp.replicas import Held, coordination
from flow_mcp.replicas.shared import RedisCoordination

from ..support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

# The loops below that wait on Redis's state (a lease's end, the probe's next ping) have no event to await: they
# ask again, each wait bounded by fail_after.

KEY = "fh-live-SECRET-9d8c7b6a5f4e3d2c1b0a"
FINGERPRINT = key_fingerprint(KEY)


@asynccontextmanager
async def replica(redis_server: RedisServer, **overrides: Any) -> AsyncIterator[RedisCoordination]:
    values: dict[str, Any] = {"redis_url": SecretStr(redis_server.url), "api_key": SecretStr(KEY), **overrides}
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
