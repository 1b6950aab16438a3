"""examples/ has a config for every host, with and without an account, each in its host's own form; the README
quotes the library example as shipped."""

from __future__ import annotations

import json
import re

from ..support.examples import CONFIGS, EXAMPLES, servers_of
from ..support.servers import ROOT


def test_there_is_an_example_for_every_host_with_and_without_an_account() -> None:
    names = set(CONFIGS)
    for host in ("claude_desktop_config", "cursor_mcp", "vscode_mcp"):
        assert {f"{host}.json", f"{host}.sandbox.json"} <= names
    assert "claude_desktop_config.windows.json" in names
    assert all((EXAMPLES / name).exists() for name in ("claude_code.sh", "agent_client.py", "library.py"))


def test_the_windows_example_uses_the_scripts_exe_with_escaped_backslashes() -> None:
    raw = (EXAMPLES / "claude_desktop_config.windows.json").read_text("utf-8")
    assert "\\\\Scripts\\\\flow-mcp.exe" in raw
    (entry,) = servers_of(json.loads(raw)).values()
    assert entry["command"].endswith("\\Scripts\\flow-mcp.exe")


def test_the_readme_quotes_the_library_example_as_shipped() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)
    assert code == (EXAMPLES / "library.py").read_text("utf-8")
