"""``flow-mcp flows`` and ``flow-mcp run`` as a user runs them: a subprocess against the built-in sandbox."""

from __future__ import annotations

import json

from flow_mcp.sandbox import DEFAULT_FLOWS

from ..support.servers import server_env
from .test_cli import run

FAQ, SUPPORT, SALES_DASH, SALES, SCHEDULER, EMAIL, ECHO, REPORT = (flow.id for flow in DEFAULT_FLOWS)
FAST = {"FLOWHUNT_SANDBOX_PACING": "0.05"}


def test_flows_lists_each_published_flow_with_its_id_and_input_hint() -> None:
    done = run("flows", "--sandbox", env=server_env(None, **FAST))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(DEFAULT_FLOWS)
    for line, flow in zip(lines, DEFAULT_FLOWS, strict=True):
        assert line.startswith(flow.name) and flow.id in line
    assert lines[0].endswith("Ask a question about our products")
    assert lines[1].startswith("Zákaznícka podpora ✓")


def test_flows_with_a_query_lists_only_the_flows_that_match_and_says_when_none_does() -> None:
    done = run("flows", "sales", "--sandbox", env=server_env(None, **FAST))
    assert done.returncode == 0, done.stderr
    assert [line.split("  ")[0] for line in done.stdout.splitlines()] == [
        "Sales-Bot",
        "Sales Bot",
        DEFAULT_FLOWS[7].name,
    ]
    nothing = run("flows", "no such flow", "--sandbox", env=server_env(None, **FAST))
    assert nothing.returncode == 0 and nothing.stdout == "" and "no such flow" in nothing.stderr


def test_run_by_exact_name_shows_progress_on_stderr_and_the_answer_on_stdout() -> None:
    done = run("run", "FAQ Bot (EN)", "What does it cost?", "--sandbox", env=server_env(None, **FAST))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('FAQ Bot (EN) answers "What does it cost?"')
    assert "… Answer ready" in done.stderr and "Status: completed" in done.stdout


def test_run_by_id_passes_variables_and_continues_a_session() -> None:
    env = server_env(None, **FAST)
    done = run("run", ECHO, "hi", "--var", "lang=sk", "--var", "tone=warm", "--sandbox", env=env)
    assert done.returncode == 0, done.stderr
    assert '"lang": "sk"' in done.stdout and '"tone": "warm"' in done.stdout


def test_run_says_what_to_do_for_a_name_no_flow_has_and_a_name_two_flows_share() -> None:
    unknown = run("run", "No Such Flow", "hi", "--sandbox", env=server_env(None, **FAST))
    assert unknown.returncode == 1 and "flow-mcp flows" in unknown.stderr and unknown.stdout == ""
    twins = json.dumps([{"id": "twin-a", "name": "Twin"}, {"id": "twin-b", "name": "Twin"}])
    shared = run("run", "Twin", "hi", "--sandbox", env=server_env(None, FLOWHUNT_SANDBOX_FLOWS=twins, **FAST))
    assert shared.returncode == 1 and "twin-a" in shared.stderr and "twin-b" in shared.stderr
    unknown_id = run("run", "f0000000-no-such-id", "hi", "--sandbox", env=server_env(None, **FAST))
    assert unknown_id.returncode == 1 and "list_flows" in unknown_id.stderr and "Traceback" not in unknown_id.stderr


def test_run_and_flows_take_the_settings_flags_and_refuse_a_bad_variable() -> None:
    done = run("flows", "faq", "--sandbox", "--timeout", "5", "--max-retries", "0", env=server_env(None, **FAST))
    assert done.returncode == 0 and FAQ in done.stdout
    bad = run("run", FAQ, "hi", "--var", "novalue", "--sandbox")
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr and "Traceback" not in bad.stderr
    keyless = run("flows", "--base-url", "http://127.0.0.1:9")
    assert keyless.returncode == 1 and "FLOWHUNT_API_KEY" in keyless.stderr
