"""Who calls (access.py) and their FlowHunt clients (clientpool.py): one client per key, ids per transport."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from flow_mcp.config import Settings
from flow_mcp.errors import ConfigurationError, InvalidArgumentError, NotFoundError
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.server.callers import Access, ClientPool, HttpAccess, SessionRef

pytestmark = pytest.mark.anyio

SESSION_ID = "0b7c3e9a-5d1f-4a2b-9c8e-6f4d2a1b3c5e"
SESSION = SessionRef(SESSION_ID)
FLOW_SESSION = SessionRef(SESSION_ID, "flow")


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
        assert caller.public(SESSION) == SESSION_ID and caller.session(SESSION_ID) == SESSION
    async with (
        Access(server, FlowHuntClient, HttpAccess()) as shared,
        shared.caller("alice") as alice,
        shared.caller("bob") as bob,
    ):
        handle = alice.public(SESSION)
        assert SESSION_ID not in handle and alice.session(handle) == SESSION
        with pytest.raises(NotFoundError):
            bob.session(handle)
        with pytest.raises(NotFoundError):
            alice.session(SESSION_ID)  # a bare FlowHunt id is no handle


async def test_a_flow_sessions_id_says_its_kind_on_stdio_and_inside_its_handle_over_http() -> None:
    server = settings(api_key=SecretStr("server-key-0123456789"))
    async with Access(server, FlowHuntClient) as stdio, stdio.caller() as caller:
        assert caller.public(FLOW_SESSION) == f"flow.{SESSION_ID}"
        assert caller.session(f"flow.{SESSION_ID}") == FLOW_SESSION and caller.session(SESSION_ID) == SESSION
        with pytest.raises(InvalidArgumentError):
            caller.session("flow.")
    async with Access(server, FlowHuntClient, HttpAccess()) as shared, shared.caller("alice") as alice:
        flow_handle, assistant_handle = alice.public(FLOW_SESSION), alice.public(SESSION)
        assert flow_handle != assistant_handle and "flow" not in flow_handle and SESSION_ID not in flow_handle
        assert alice.session(flow_handle) == FLOW_SESSION and alice.session(assistant_handle) == SESSION
        with pytest.raises(NotFoundError):
            alice.session(f"flow.{SESSION_ID}")  # a stdio-style id is no handle


async def test_a_caller_without_its_own_key_is_told_which_header_to_send() -> None:
    own_keys = settings(secret=SecretStr("handle-secret-0123456789"))
    async with Access(own_keys, FlowHuntClient, HttpAccess(key_from_client=True)) as access:
        with pytest.raises(ConfigurationError) as refused:
            async with access.caller("alice", None):
                pass
        assert access.key_header is not None and access.key_header in str(refused.value)
        async with access.caller(None, "key-one-0123456789") as one, access.caller(None, "key-two-0123456789") as two:
            assert one.client is not two.client
            with pytest.raises(NotFoundError):
                two.session(one.public(SESSION))


async def test_without_a_server_held_secret_callers_bringing_their_own_key_get_no_handles() -> None:
    # A handle key derived from what a caller sends would let that caller make handles: the server refuses instead.
    async with Access(settings(), FlowHuntClient, HttpAccess(key_from_client=True)) as access:
        with pytest.raises(ConfigurationError) as refused:
            async with access.caller("alice", "key-one-0123456789"):
                pass
    assert "FLOW_MCP_SECRET" in str(refused.value)
