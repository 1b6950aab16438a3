"""A local simulator of FlowHunt's Flow Assistant V3 API with a scripted assistant and fault knobs.

It imports nothing from the rest of flow_mcp, so the client and the simulator cannot share a bug.
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
