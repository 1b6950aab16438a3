"""``flow-mcp check``'s report: each step's line, and an exit code that counts only failures."""

from __future__ import annotations

from flow_mcp.cli.check import Step, report


def test_the_report_exit_code_counts_only_failures() -> None:
    written: list[str] = []
    assert report([Step("a", "ok", "fine"), Step("b", "skip", "later")], written.append) == 0
    assert report([Step("a", "fail", "broken", "do this")], written.append) == 1
    assert any("fix: do this" in line for line in written)
