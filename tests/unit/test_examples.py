"""examples/ has a config for every host, with and without an account, each in its host's own form."""

from __future__ import annotations

import json

from ..support.examples import CONFIGS, EXAMPLES, servers_of


def test_there_is_an_example_for_every_host_with_and_without_an_account() -> None:
    names = set(CONFIGS)
    for host in ("claude_desktop_config", "cursor_mcp", "vscode_mcp"):
        assert {f"{host}.json", f"{host}.sandbox.json"} <= names
    assert "claude_desktop_config.windows.json" in names
    assert (EXAMPLES / "claude_code.sh").exists() and (EXAMPLES / "agent_client.py").exists()


def test_the_windows_example_uses_the_scripts_exe_with_escaped_backslashes() -> None:
    raw = (EXAMPLES / "claude_desktop_config.windows.json").read_text("utf-8")
    assert "\\\\Scripts\\\\flow-mcp.exe" in raw
    (entry,) = servers_of(json.loads(raw)).values()
    assert entry["command"].endswith("\\Scripts\\flow-mcp.exe")
