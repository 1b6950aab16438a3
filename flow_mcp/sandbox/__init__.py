"""A local simulator of FlowHunt's Flow Assistant V3 API and its V2 published-flow API, with scripted turns and
fault knobs.

It imports nothing from the rest of flow_mcp, so the client and the simulator cannot share a bug.

    with SandboxServer(SandboxConfig(pacing=0.02)) as sandbox:   # also `async with`
        base_url = sandbox.url                                    # http://127.0.0.1:<free port>
        sandbox.state.update_config({"rate_429": 0.5, "seed": 1})  # knobs change at runtime

API: GET /v2/auth/me; POST /v3/flow-assistants/create?workspace_id=W; POST /v3/flow-assistants/{id}/invoke;
POST /v3/flow-assistants/{id}/invocation_response/{from_ms}; POST /v2/flows/?workspace_id=W (list);
GET /v2/flows/{flow_id}?workspace_id=W; POST /v2/flows/sessions/from_flow/create?workspace_id=W;
POST /v2/flows/sessions/{id}/ invoke, invocation_response/{from_ms}, attachments, resume-hook, cancel.
Key "fh-sandbox-key", workspace "ws-sandbox"; the published flows are flows.DEFAULT_FLOWS unless the `flows` knob
says otherwise.
Controls (no auth): GET /_sandbox/requests, /_sandbox/sessions/{id}/events, /_sandbox/sessions/{id}/invocations,
/_sandbox/sessions/{id}/resumes, /_sandbox/faults, GET|POST /_sandbox/config, POST /_sandbox/reset,
GET|POST /_sandbox/flows, DELETE /_sandbox/flows/{flow_id}.
Trigger words (see script.SCENARIOS; they work in flow sessions too): events:N, long, fail, hook, approval,
integration, file access, unknown, multi, slow tool, big output, close session; anything else gets the default
course (in a flow session: the flow's own course, see flows.py).
Knobs: see SandboxConfig; each is also read from FLOWHUNT_SANDBOX_<KNOB> by SandboxConfig.from_env().
"""

from flow_mcp.sandbox.app import build_app
from flow_mcp.sandbox.config import CALL_KINDS, SandboxConfig, knob_names
from flow_mcp.sandbox.flows import DEFAULT_FLOWS, PublishedFlow, flow_turn
from flow_mcp.sandbox.runner import SandboxServer, run_sandbox
from flow_mcp.sandbox.script import SCENARIOS, ScriptedEvent, choose_scenario, script_turn
from flow_mcp.sandbox.state import FAULT_KINDS, SandboxState
from flow_mcp.sandbox.validation import AI_MODELS

__all__ = [
    "AI_MODELS",
    "CALL_KINDS",
    "DEFAULT_FLOWS",
    "FAULT_KINDS",
    "SCENARIOS",
    "PublishedFlow",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "ScriptedEvent",
    "build_app",
    "choose_scenario",
    "flow_turn",
    "knob_names",
    "run_sandbox",
    "script_turn",
]
