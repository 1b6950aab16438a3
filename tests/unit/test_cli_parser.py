"""The ``flow-mcp`` command without a process: the stdio guard knows every HTTP flag; loading pauses the collector."""

from __future__ import annotations

import gc

import pytest

from flow_mcp.cli.commands import _loading, _parser


def test_the_stdio_guard_checks_every_flag_of_the_http_group() -> None:
    args = _parser().parse_args(["serve"])
    guarded = {option for action in args.http_flags for option in action.option_strings}
    assert {"--host", "--port", "--path", "--stateless", "--no-auth", "--allowed-host"} <= guarded
    assert "--flowhunt-key-from-client" in guarded and "--transport" not in guarded


def test_the_collector_is_off_while_the_server_loads_and_back_on_after_even_a_failed_load() -> None:
    frozen_before = gc.get_freeze_count()
    try:
        with _loading():
            assert not gc.isenabled()
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before  # what loaded is out of later collections
        with pytest.raises(ImportError), _loading():
            raise ImportError("a broken install")
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
