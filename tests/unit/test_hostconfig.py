"""Which command a host config names (the installed script, the .exe on Windows, or the interpreter), for each host."""

from __future__ import annotations

import json
from pathlib import Path

from flow_mcp.cli.hostconfig import HOSTS, Launch, launcher, snippet


def test_the_installed_script_next_to_the_interpreter_is_preferred(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    python = tmp_path / "bin" / "python"
    python.touch()
    assert launcher(str(python), windows=False).command.endswith("python")
    (tmp_path / "bin" / "flow-mcp").touch()
    assert launcher(str(python), windows=False) == Launch(str(tmp_path / "bin" / "flow-mcp"), ["serve"])
    assert launcher(str(python), windows=False, sandbox=True).args == ["serve", "--sandbox"]


def test_on_windows_the_script_is_the_exe_in_scripts(tmp_path: Path) -> None:
    (tmp_path / "Scripts").mkdir()
    python = tmp_path / "Scripts" / "python.exe"
    python.touch()
    (tmp_path / "Scripts" / "flow-mcp.exe").touch()
    launch = launcher(str(python), windows=True)
    assert launch.command == str(tmp_path / "Scripts" / "flow-mcp.exe")
    body = json.loads(snippet("claude-desktop", launch=launch))
    assert body["mcpServers"]["flowhunt"]["command"] == str(tmp_path / "Scripts" / "flow-mcp.exe")


def test_without_a_script_the_interpreter_runs_the_module(tmp_path: Path) -> None:
    python = tmp_path / "python3"
    python.touch()
    launch = launcher(str(python), windows=False)
    assert launch.command == str(python) and launch.args == ["-m", "flow_mcp", "serve"]


def test_every_host_has_a_snippet() -> None:
    launch = Launch("/opt/flow mcp/bin/flow-mcp", ["serve"])
    for host in HOSTS:
        assert "/opt/flow mcp/bin/flow-mcp" in snippet(host, launch=launch).replace("'", "")
