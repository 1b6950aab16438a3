"""The ``flow-mcp`` argument parser, without a process: the stdio guard knows every HTTP flag."""

from __future__ import annotations

from flow_mcp.cli.commands import _parser


def test_the_stdio_guard_checks_every_flag_of_the_http_group() -> None:
    args = _parser().parse_args(["serve"])
    guarded = {option for action in args.http_flags for option in action.option_strings}
    assert {"--host", "--port", "--path", "--stateless", "--no-auth", "--allowed-host"} <= guarded
    assert "--flowhunt-key-from-client" in guarded and "--transport" not in guarded
