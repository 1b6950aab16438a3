"""``RedisCoordination``: the replicas' budget, pause, session holds and cancellations in Redis. The only module
that imports ``redis`` (an import-linter contract says so); it is loaded only when FLOW_MCP_REDIS_URL is set.

Every Redis call is bounded by FLOW_MCP_REDIS_TIMEOUT. The first one that fails or runs late opens the circuit:
from then on this replica uses its own ``InProcess`` state (the budget per process, holds seen here only) and
says ``degraded`` in /healthz, while a probe pings Redis every second and closes the circuit when it answers.
Nothing here ever raises for Redis's sake, and nothing waits on Redis longer than the timeout.

Keys (all with a TTL, all under ``flow-mcp:<fingerprint of the FlowHunt key>``; never the key itself):
``:budget`` the token bucket, ``:pause`` a 429's pause, ``:turn:<sha256 of the session id>`` a hold on a session's
turn, ``:left:<...>`` the cursor of a turn a call returned still running. Cancellations travel on the channel
``flow-mcp:<namespace>:cancel`` as digests of the call they name.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, NoPermissionError, RedisError

from flow_mcp.config import Settings, key_fingerprint
from flow_mcp.flowhunt.logger import get_logger
from flow_mcp.flowhunt.ratelimit import LocalBucket, default_burst
from flow_mcp.replicas.local import Held, InProcess, Lease, Position

log = get_logger()

POSITION_SECONDS = 0.2  # how soon a hold in Redis shows where its turn stands
PROBE_SECONDS = 1.0  # how often Redis is pinged: how soon an outage, and the end of one, is noticed
MAX_CONNECTIONS = 100  # to Redis, per replica: calls beyond wait their turn (Redis answers in well under a ms)
LEFT_RUNNING_SECONDS = 86_400  # a turn left running is remembered this long (turns that run longer are rare)
_DOWN: Any = object()  # what a Redis call that failed or ran late gives back

# Redis's own clock (TIME) for every timed decision, so replicas whose clocks differ still agree.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 "

# A token, or how long to wait: KEYS budget, pause; ARGV rate per second, burst, TTL in ms.
# Returns {granted 0/1, milliseconds to wait, paused 0/1}.
_TAKE = (
    _NOW
    + """
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {0, math.ceil(paused - now), 1} end
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted, wait = 0, 0
if tokens >= 1 then tokens = tokens - 1 granted = 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {granted, wait, 0}
"""
)

# Pause every replica: KEYS pause; ARGV milliseconds. A longer pause already running stays.
_PAUSE = (
    _NOW
    + """
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], string.format('%.3f', now + ms), 'PX', ARGV[1]) end
return 1
"""
)

# Hold a session's turn: KEYS turn; ARGV owner, cursor, TTL in ms, force 0/1. Returns {1, ''} or {0, their cursor}.
_HOLD = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] and ARGV[4] == '0' then
  return {0, redis.call('HGET', KEYS[1], 'cursor') or ''}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'cursor', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ''}
"""

# Renew a hold (or take it again if it lapsed while Redis was away): 1, or 0 when another owner has it now.
_RENEW = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'cursor', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Give a hold up, if it is still ours.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_ALONE = "this replica goes on alone (its own request budget and session holds) until Redis is back"
# Refusals that no waiting mends, so the warning says what to change.
_CREDENTIALS = "Redis refused the user or password in FLOW_MCP_REDIS_URL: correct them; until then " + _ALONE
_PERMISSIONS = (
    "the Redis user in FLOW_MCP_REDIS_URL may not run a command flow-mcp needs: grant those docs/replicas.md lists; "
    "until then " + _ALONE
)


def _help(error: BaseException) -> str:
    """What the warning of an open circuit tells the operator to do."""
    if isinstance(error, AuthenticationError | AuthorizationError):
        return _CREDENTIALS
    return _PERMISSIONS if isinstance(error, NoPermissionError) else _ALONE


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RedisCoordination:
    """``Coordination`` through Redis, with this process's ``InProcess`` state while Redis is away."""

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        self._timeout = settings.redis_timeout
        self._lease_ms = math.ceil(settings.redis_lease_seconds * 1000)
        # A call waits for a free connection rather than failing when many run at once (recent redis-py refuses
        # the 101st), which would open the circuit at a busy moment; the wait is bounded like the call.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            max_connections=MAX_CONNECTIONS,
            timeout=None,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),  # the circuit decides when to try again, not the client
            decode_responses=True,
            # What Redis holds or carries is not always ours (anyone with access can publish on the channel): bytes
            # that are not UTF-8 must not raise, which in the subscriber would stop the whole server.
            encoding_errors="replace",
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._take = self._redis.register_script(_TAKE)
        self._pause = self._redis.register_script(_PAUSE)
        self._hold = self._redis.register_script(_HOLD)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        secret = settings.api_key or settings.secret
        namespace = key_fingerprint(secret.get_secret_value()) if secret is not None else "open"
        self._channel = f"flow-mcp:{namespace}:cancel"
        self._local = InProcess()
        self._leases: set[_SharedLease] = set()
        self._callbacks: list[Callable[[str], object]] = []
        self.up = True
        self._tasks: TaskGroup | None = None

    async def __aenter__(self) -> RedisCoordination:
        await self.run(self._redis.ping)  # Redis away at the start: degraded, not a failure to start
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        for loop in (self._probe, self._renewals, self._cancellations):
            self._tasks.start_soon(loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()
            await self._tasks.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
            await self._redis.aclose()

    # -- the circuit ---------------------------------------------------------------------------------

    async def run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``'s answer, or ``_DOWN`` when the circuit is open or the call fails or runs late."""
        if not self.up:
            return _DOWN
        try:
            with anyio.fail_after(self._timeout):
                return await call()
        except (RedisError, OSError, TimeoutError) as error:
            self._trip(error)
            return _DOWN

    def _trip(self, error: BaseException) -> None:
        if self.up:
            self.up = False
            log.warning("redis_unavailable", error_type=type(error).__name__, help=_help(error))

    async def _probe(self) -> None:
        while True:
            await anyio.sleep(PROBE_SECONDS)
            try:
                with anyio.fail_after(self._timeout):
                    await self._redis.ping()
            except Exception as error:  # Redis's or not: this loop lives as long as the server
                self._trip(error)
                continue
            if not self.up:
                self.up = True
                log.warning("redis_back", help="the request budget and session holds are shared again")

    def health(self) -> dict[str, Any]:
        return {"redis": "ok" if self.up else "unavailable", "degraded": not self.up}

    # -- the request budget --------------------------------------------------------------------------

    def bucket(self, fingerprint: str, rate: float) -> SharedBucket:
        return SharedBucket(self, f"flow-mcp:{fingerprint}", rate)

    async def take(self, keys: list[str], args: list[float]) -> Any:
        return await self.run(lambda: self._take(keys=keys, args=args))

    async def pause(self, key: str, milliseconds: int) -> None:
        await self.run(lambda: self._pause(keys=[key], args=[milliseconds]))

    # -- one turn per session ------------------------------------------------------------------------

    async def hold(self, fingerprint: str, session_id: str, *, check: bool, position: Position) -> Lease | Held:
        # Held here too: while Redis is away, this replica still refuses a second turn it follows itself.
        local = self._local.hold_now(fingerprint, session_id, check=check, position=position)
        if isinstance(local, Held):
            return local
        key = f"flow-mcp:{fingerprint}:turn:{_digest(session_id)}"
        owner = uuid.uuid4().hex
        args: list[str | int] = [owner, position() or "", self._lease_ms, 0 if check else 1]
        try:
            answer = await self.run(lambda: self._hold(keys=[key], args=args))
        except BaseException:
            # Cancelled while Redis answered (the caller gone): no lease will release this hold, so give it up now,
            # or this replica refuses the session until it restarts. Redis may have taken it: free that too.
            local.release_now()
            with anyio.CancelScope(shield=True):
                await self.run(lambda: self._release(keys=[key], args=[owner]))
            raise
        if answer is not _DOWN and not int(answer[0]):
            local.release_now()
            return Held(answer[1] or None, elsewhere=True)
        # Also when Redis is away: the renewals put the hold into Redis once it is back.
        lease = _SharedLease(self, key, owner, position, local.release_now)
        self._leases.add(lease)
        return lease

    async def _renewals(self) -> None:
        # Each hold is renewed a third of the way into its lease, and sooner when its turn moved on, so that a call
        # refused on another replica is told where the turn stands.
        while True:
            await anyio.sleep(POSITION_SECONDS)
            for lease in list(self._leases):
                if lease.due(self._lease_ms / 3000):
                    try:
                        await lease.renew()
                    except Exception as error:  # an answer of a shape never seen: renewed next round; the loop lives
                        log.error("turn_hold_renewal_failed", error_type=type(error).__name__)

    async def left_running(self, fingerprint: str, session_id: str) -> str | None:
        key = f"flow-mcp:{fingerprint}:left:{_digest(session_id)}"
        answer = await self.run(lambda: self._redis.get(key))
        if answer is _DOWN:
            return await self._local.left_running(fingerprint, session_id)
        return str(answer) if answer else None

    async def leave(self, fingerprint: str, session_id: str, cursor: str | None) -> None:
        self._local.leave_now(fingerprint, session_id, cursor)
        key = f"flow-mcp:{fingerprint}:left:{_digest(session_id)}"
        if cursor is None:
            await self.run(lambda: self._redis.delete(key))
        else:
            await self.run(lambda: self._redis.set(key, cursor, ex=LEFT_RUNNING_SECONDS))

    # -- cancellation --------------------------------------------------------------------------------

    async def cancel(self, call: str) -> None:
        # Redis away: the cancellation reached this replica only (the caller tried its calls already).
        await self.run(lambda: self._redis.publish(self._channel, call))

    def on_cancel(self, callback: Callable[[str], object]) -> None:
        self._callbacks.append(callback)

    async def _cancellations(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=PROBE_SECONDS)
                        if message is not None and message.get("type") == "message":
                            self._pass_on(str(message["data"]))
            except (RedisError, OSError, TimeoutError) as error:
                self._trip(error)
                await anyio.sleep(PROBE_SECONDS)
            except Exception as error:  # not Redis's: logged, and the listening goes on
                log.error("cancellations_listener_failed", error_type=type(error).__name__)
                await anyio.sleep(PROBE_SECONDS)

    def _pass_on(self, call: str) -> None:
        for callback in self._callbacks:
            try:
                callback(call)
            except Exception as error:  # one callback's failure must not stop the others, nor the listener
                log.error("cancellation_not_passed_on", error_type=type(error).__name__)


class SharedBucket:
    """The key's token bucket and pause in Redis, shared by every replica; this process's own while Redis is away."""

    def __init__(self, shared: RedisCoordination, prefix: str, rate: float) -> None:
        self._shared = shared
        self._keys = [f"{prefix}:budget", f"{prefix}:pause"]
        self._rate, self._burst = rate, default_burst(rate)
        self._ttl_ms = math.ceil(self._burst / rate * 1000) + 1000  # by then the bucket is full: forget it
        self._local = LocalBucket(rate)  # during an outage: the budget per process, as without Redis
        self._paused_until = 0.0  # the shared pause as last seen, on this process's clock

    async def take(self) -> float:
        answer = await self._shared.take(self._keys, [self._rate, self._burst, self._ttl_ms])
        if answer is _DOWN:
            return self._local.take_now()
        granted, wait_ms, paused = (int(value) for value in answer)
        if paused:
            self._paused_until = max(self._paused_until, time.monotonic() + wait_ms / 1000)
        return 0.0 if granted else wait_ms / 1000

    async def pause(self, seconds: float) -> None:
        self._local.pause_now(seconds)
        if seconds > 0:
            await self._shared.pause(self._keys[1], math.ceil(seconds * 1000))

    @property
    def paused_for(self) -> float:
        return max(self._local.paused_for, self._paused_until - time.monotonic(), 0.0)


class _SharedLease:
    def __init__(
        self, shared: RedisCoordination, key: str, owner: str, position: Position, release_local: Callable[[], None]
    ) -> None:
        self._shared, self._key, self._owner, self._position = shared, key, owner, position
        self._release_local = release_local
        self._written = (position() or "", time.monotonic())  # what Redis holds, and when it was written
        self._writing = anyio.Lock()  # a renewal and the release, one after the other
        self._lost = False  # another replica's hold was found in its place

    def due(self, every: float) -> bool:
        """Whether the hold wants renewing: its lease is a third gone, or its turn moved on."""
        written, at = self._written
        return time.monotonic() - at >= every or (self._position() or "") != written

    async def renew(self) -> None:
        async with self._writing:
            # Released since the renewals took their list: renewing would take the session again, for nobody.
            if self not in self._shared._leases:
                return
            cursor = self._position() or ""
            self._written = (cursor, time.monotonic())
            args: list[str | int] = [self._owner, cursor, self._shared._lease_ms]
            answer = await self._shared.run(lambda: self._shared._renew(keys=[self._key], args=args))
        if answer is _DOWN:
            return
        if not int(answer) and not self._lost:
            # It lapsed (Redis away longer than the lease, or emptied) and another replica took the session meanwhile.
            # This turn runs on, so the renewals go on too: they take the hold back once that other turn ends.
            log.warning("turn_hold_lost", help="another replica follows a turn in this session too")
        self._lost = not int(answer)

    async def release(self) -> None:
        self._release_local()
        self._shared._leases.discard(self)
        async with self._writing:  # after a renewal on its way, which would otherwise land after the release
            await self._shared.run(lambda: self._shared._release(keys=[self._key], args=[self._owner]))
