"""A local simulator of FlowHunt's Flow Assistant V3 API with a scripted assistant and fault knobs.

It imports nothing from the rest of flow_mcp, so the client and the simulator cannot share a bug.

    with SandboxServer(SandboxConfig(pacing=0.02)) as sandbox:   # also `async with`
        base_url = sandbox.url                                    # http://127.0.0.1:<free port>
        sandbox.state.update_config({"rate_429": 0.5, "seed": 1})  # knobs change at runtime

API: GET /v2/auth/me; POST /v3/flow-assistants/create?workspace_id=W; POST /v3/flow-assistants/{id}/invoke;
POST /v3/flow-assistants/{id}/invocation_response/{from_ms}. Key "fh-sandbox-key", workspace "ws-sandbox".
Controls (no auth): GET /_sandbox/requests, /_sandbox/sessions/{id}/events, /_sandbox/sessions/{id}/invocations,
/_sandbox/faults, GET|POST /_sandbox/config, POST /_sandbox/reset.
Trigger words (see script.SCENARIOS): events:N, long, fail, hook, approval, integration, file access, unknown,
multi, slow tool, close session; anything else gets the default course.
Knobs: see SandboxConfig; each is also read from FLOWHUNT_SANDBOX_<KNOB> by SandboxConfig.from_env().
"""

from flow_mcp.sandbox.app import build_app
from flow_mcp.sandbox.config import SandboxConfig, knob_names
from flow_mcp.sandbox.runner import SandboxServer, run_sandbox
from flow_mcp.sandbox.script import SCENARIOS, ScriptedEvent, choose_scenario, script_turn
from flow_mcp.sandbox.state import FAULT_KINDS, SandboxState
from flow_mcp.sandbox.validation import AI_MODELS

__all__ = [
    "AI_MODELS",
    "FAULT_KINDS",
    "SCENARIOS",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "ScriptedEvent",
    "build_app",
    "choose_scenario",
    "knob_names",
    "run_sandbox",
    "script_turn",
]
