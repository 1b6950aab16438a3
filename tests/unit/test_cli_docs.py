"""The docs match the code: every setting and HTTP flag in the README, and the README's test command in CI."""

from __future__ import annotations

import argparse
import re

from flow_mcp.cli.commands import _HTTP_DEFAULTS, SETTING_FLAGS, _parser
from flow_mcp.config import ENV_VARS

from ..support.servers import ROOT


def test_the_readme_documents_every_variable_and_flag() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for flag, field in SETTING_FLAGS.items():
        row = next(
            (line for line in readme.splitlines() if f"`{ENV_VARS[field]}`" in line and line.startswith("|")), ""
        )
        assert f"`{flag}`" in row, f"README's configuration table lacks {ENV_VARS[field]} / {flag}"


def test_the_ci_script_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = re.findall(r"```(?:sh|bash)\n(.*?)```", readme, re.S)
    test_command = next(c.strip() for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text("utf-8")


def test_the_readme_documents_every_http_flag_of_serve() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    flags = [
        option
        for action in commands.choices["serve"]._actions
        for option in action.option_strings
        if option.startswith("--") and option not in SETTING_FLAGS and option not in ("--help", "--sandbox")
    ]
    assert "--allowed-host" in flags and "--flowhunt-key-from-client" in flags
    for flag in flags:
        assert any(line.startswith(f"| `{flag}`") for line in readme.splitlines()), f"README lacks {flag}"


def test_the_http_defaults_the_stdio_guard_checks_are_the_parsers_own() -> None:
    args = _parser().parse_args(["serve"])
    assert {dest: getattr(args, dest) for dest in _HTTP_DEFAULTS} == _HTTP_DEFAULTS
