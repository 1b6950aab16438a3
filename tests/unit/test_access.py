"""Who calls (access.py) and their FlowHunt clients (clientpool.py): one client per key, ids per transport."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.errors import ConfigurationError, NotFoundError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.server.callers import Access, ClientPool, HttpAccess

pytestmark = pytest.mark.anyio

SESSION = "0b7c3e9a-5d1f-4a2b-9c8e-6f4d2a1b3c5e"


def settings(**values: object) -> Settings:
    return Settings(base_url="http://127.0.0.1:9", workspace_id="ws-server", **values)


async def test_each_key_gets_its_own_client_budget_and_workspace_discovery() -> None:
    made: list[Settings] = []

    def factory(own: Settings) -> FlowHuntClient:
        made.append(own)
        return FlowHuntClient(own)

    pool = ClientPool(settings(), factory)
    try:
        async with pool.lease("key-one-0123456789") as one, pool.lease("key-two-0123456789") as two:
            async with pool.lease("key-one-0123456789") as one_again:
                assert one_again is one
            assert two is not one and two.gate is not one.gate
        assert len(pool) == 2
        assert [s.api_key.get_secret_value() for s in made if s.api_key] == ["key-one-0123456789", "key-two-0123456789"]
        # The server's workspace is not the key's: each key discovers its own.
        assert all(s.workspace_id is None for s in made)
    finally:
        await pool.aclose()
    assert len(pool) == 0


async def test_stdio_callers_see_flowhunt_ids_and_http_callers_see_handles() -> None:
    server = settings(api_key=SecretStr("server-key-0123456789"))
    async with Access(server, FlowHuntClient) as stdio, stdio.caller() as caller:
        assert caller.public(SESSION) == SESSION and caller.session(SESSION) == SESSION
    async with (
        Access(server, FlowHuntClient, HttpAccess()) as shared,
        shared.caller("alice") as alice,
        shared.caller("bob") as bob,
    ):
        handle = alice.public(SESSION)
        assert handle != SESSION and alice.session(handle) == SESSION
        with pytest.raises(NotFoundError):
            bob.session(handle)
        with pytest.raises(NotFoundError):
            alice.session(SESSION)  # a bare FlowHunt id is no handle


async def test_a_caller_without_its_own_key_is_told_which_header_to_send() -> None:
    async with Access(settings(), FlowHuntClient, HttpAccess(key_from_client=True)) as access:
        with pytest.raises(ConfigurationError) as refused:
            async with access.caller("alice", None):
                pass
        assert access.key_header is not None and access.key_header in str(refused.value)
        async with access.caller(None, "key-one-0123456789") as one, access.caller(None, "key-two-0123456789") as two:
            assert one.client is not two.client
            with pytest.raises(NotFoundError):
                two.session(one.public(SESSION))
