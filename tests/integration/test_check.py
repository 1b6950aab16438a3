"""``flow-mcp check``'s steps run in process against a real sandbox."""

from __future__ import annotations

import pytest

from flow_mcp.cli.check import run_checks
from flow_mcp.sandbox import SandboxServer

from ..support.servers import settings_for


@pytest.mark.anyio
async def test_a_workspace_that_is_not_the_keys_fails_before_any_session_is_created(sandbox: SandboxServer) -> None:
    steps = await run_checks(settings_for(sandbox, workspace_id="ws-someone-else"))
    by_name = {step.name: step for step in steps}
    assert by_name["workspace"].outcome == "fail" and by_name["workspace"].fix
    assert sandbox.config.workspace_id in (by_name["workspace"].fix or "")
    assert by_name["create session"].outcome == "skip"
    assert not [entry for entry in sandbox.state.request_log() if entry["path"] == "/v3/flow-assistants/create"]


@pytest.mark.anyio
async def test_a_configured_workspace_is_used_as_is(sandbox: SandboxServer) -> None:
    steps = await run_checks(settings_for(sandbox, workspace_id=sandbox.config.workspace_id))
    assert [step.outcome for step in steps] == ["ok"] * 5
