"""``flow-mcp check`` against a real sandbox: each step ok or fail with a fix, and an exit code to match."""

from __future__ import annotations

import subprocess
import sys

from flow_mcp.sandbox import SandboxServer

from ..support.servers import server_env

CREATE_PATH = "/v3/flow-assistants/create"


def check(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flow_mcp", "check", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def outcomes(stdout: str) -> dict[str, str]:
    """Step name -> ok / FAIL / -- from check's output."""
    found = {}
    for line in stdout.splitlines():
        mark, _, rest = line.partition("  ")
        if mark in ("ok", "FAIL", "--") and ":" in rest:
            found[rest.strip().split(":")[0]] = mark
    return found


def fix_after(stdout: str, step: str) -> str:
    lines = stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("FAIL") and f"{step}:" in line)
    assert lines[index + 1].lstrip().startswith("fix:")
    return lines[index + 1]


def creates(sandbox: SandboxServer) -> int:
    return sum(1 for entry in sandbox.state.request_log() if entry["path"] == CREATE_PATH)


def test_a_good_configuration_passes_every_step_and_creates_one_session(sandbox: SandboxServer) -> None:
    done = check(env=server_env(sandbox))
    assert done.returncode == 0, done.stdout + done.stderr
    assert outcomes(done.stdout) == {
        "API key": "ok",
        "base URL": "ok",
        "key accepted": "ok",
        "workspace": "ok",
        "create session": "ok",
    }
    assert creates(sandbox) == 1
    assert sandbox.config.api_key not in done.stdout + done.stderr


def test_dry_run_checks_everything_but_creates_no_session(sandbox: SandboxServer) -> None:
    done = check("--dry-run", env=server_env(sandbox))
    assert done.returncode == 0, done.stdout + done.stderr
    assert outcomes(done.stdout)["create session"] == "--"
    assert outcomes(done.stdout)["key accepted"] == "ok"
    assert creates(sandbox) == 0
    assert any(entry["path"] == "/v2/auth/me" for entry in sandbox.state.request_log())


def test_a_wrong_key_fails_the_key_step_with_a_fix_and_never_prints_the_key(sandbox: SandboxServer) -> None:
    wrong = "fh-wrong-KEY-0123456789abcdef"
    done = check(env=server_env(sandbox, FLOWHUNT_API_KEY=wrong))
    assert done.returncode == 1
    steps = outcomes(done.stdout)
    assert steps["API key"] == "ok" and steps["base URL"] == "ok" and steps["key accepted"] == "FAIL"
    assert steps["workspace"] == steps["create session"] == "--"
    assert "FLOWHUNT_API_KEY" in fix_after(done.stdout, "key accepted")
    assert wrong not in done.stdout + done.stderr
    assert creates(sandbox) == 0


def test_an_unreachable_base_url_fails_with_a_fix() -> None:
    done = check("--base-url", "http://127.0.0.1:9", "--api-key", "fh-some-key", env=server_env(None))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert outcomes(done.stdout)["base URL"] == "FAIL"
    assert "FLOWHUNT_BASE_URL" in fix_after(done.stdout, "base URL")


def test_a_missing_key_fails_the_first_step_and_says_where_to_set_it(sandbox: SandboxServer) -> None:
    env = server_env(sandbox)
    del env["FLOWHUNT_API_KEY"]
    done = check(env=env)
    assert done.returncode == 1
    steps = outcomes(done.stdout)
    assert steps["API key"] == "FAIL" and steps["base URL"] == "ok" and steps["key accepted"] == "--"
    assert "env" in fix_after(done.stdout, "API key")


def test_check_with_the_sandbox_flag_needs_no_account() -> None:
    done = check("--sandbox", env=server_env(None))
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(outcomes(done.stdout).values()) == {"ok"}
