"""The ``flow-mcp`` command as a user runs it: help, bad input, the demo and ask, in real processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flow_mcp.cli.commands import SETTING_FLAGS
from flow_mcp.config import ENV_VARS

from ..support.servers import server_env


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flow_mcp", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env or server_env(None),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        *([command, "--help"] for command in ("serve", "sandbox", "demo", "ask", "flows", "run", "check", "config")),
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 0 and "usage: flow-mcp" in done.stdout


def test_help_names_every_setting_with_its_flag_and_variable() -> None:
    done = run("serve", "--help")
    for flag, field in SETTING_FLAGS.items():
        assert flag in done.stdout and ENV_VARS[field] in done.stdout


@pytest.mark.parametrize(
    "args", [["--no-such-flag"], ["serve", "--timeout"], ["ask"], ["sandbox", "--port", "abc"], ["frobnicate"]]
)
def test_a_bad_command_line_gives_one_clear_line_and_no_traceback(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "error" in done.stderr
    assert done.stdout == ""


def test_an_invalid_setting_names_its_variable_and_flag() -> None:
    done = run("serve", env=server_env(None, FLOWHUNT_TIMEOUT="soon"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "FLOWHUNT_TIMEOUT" in done.stderr and "--timeout" in done.stderr
    assert done.stdout == ""


def test_demo_runs_the_whole_path_and_shows_streamed_progress() -> None:
    done = run("demo", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Tools: ask, create_session, invoke, list_flows, poll_events, respond, run_flow" in done.stdout
    assert done.stdout.count("< answer:") == 3
    assert "… Calling tool search_docs" in done.stdout
    # The published flow asks its question; the demo's client answers it inline and the flow finishes with it.
    assert "? the flow asks the user:" in done.stdout
    assert 'You answered: "Tuesday at 10:00"' in done.stdout


def test_ask_from_a_terminal_prints_progress_to_stderr_and_the_answer_to_stdout() -> None:
    done = run("ask", "Build a tiny flow", "--sandbox", env=server_env(None, FLOWHUNT_SANDBOX_PACING="0.05"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('You asked: "Build a tiny flow"')
    assert "… Answer ready" in done.stderr


def test_ask_without_an_api_key_says_which_variable_to_set_in_one_line() -> None:
    done = run("ask", "hello", "--base-url", "http://127.0.0.1:9")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "FLOWHUNT_API_KEY" in done.stderr
    assert done.stdout == ""


def test_ask_round_trips_emoji_and_non_latin_text_on_a_legacy_code_page() -> None:
    env = server_env(None, FLOWHUNT_SANDBOX_PACING="0.05", PYTHONIOENCODING="cp1252")
    done = subprocess.run(
        [sys.executable, "-m", "flow_mcp", "ask", "Grüße 🚀 日本語", "--sandbox"],
        capture_output=True,
        env=env,
        timeout=90,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert "Grüße 🚀 日本語" in done.stdout.decode("utf-8")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "--port", "9000"], "--port"),  # stdio with an HTTP flag would look hung
        (["serve", "--transport", "http", "--port", "70000"], "not a port"),
        (["serve", "--transport", "http", "--path", "mcp"], "not a URL path"),
        (["serve", "--transport", "http", "--no-auth", "--token", "t" * 20], "--no-auth conflicts"),
        (["serve", "--transport", "http", "--token", "short"], "at least 16"),
        (["serve", "--transport", "http", "--secret", "short"], "FLOW_MCP_SECRET"),
    ],
)
def test_a_wrong_http_setup_stops_at_once_with_what_to_fix(args: list[str], says: str) -> None:
    done = run(*args, timeout=30)
    assert done.returncode == 2 and says in done.stderr
    assert done.stdout == ""
