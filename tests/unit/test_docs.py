"""The README and docs/ match the code: every setting and flag is documented, CI runs the documented test command,
and every relative link between the pages resolves, anchors included."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import unquote

from flow_mcp.cli.commands import SETTING_FLAGS, _parser
from flow_mcp.config import ENV_VARS

from ..support.servers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.S | re.M)


def table_rows(path: Path) -> list[str]:
    return [line for line in path.read_text("utf-8").splitlines() if line.startswith("|")]


def test_the_configuration_page_documents_every_variable_with_its_flag() -> None:
    rows = table_rows(DOCS / "configuration.md")
    for flag, field in SETTING_FLAGS.items():
        row = next((line for line in rows if f"`{ENV_VARS[field]}`" in line), "")
        assert f"`{flag}`" in row, f"docs/configuration.md lacks {ENV_VARS[field]} / {flag}"


def test_the_http_page_documents_every_http_flag_of_serve() -> None:
    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    flags = [
        option
        for action in commands.choices["serve"]._actions
        for option in action.option_strings
        if option.startswith("--") and option not in SETTING_FLAGS and option not in ("--help", "--sandbox")
    ]
    assert "--allowed-host" in flags and "--flowhunt-key-from-client" in flags
    rows = table_rows(DOCS / "http.md")
    for flag in flags:
        assert any(row.startswith(f"| `{flag}`") for row in rows), f"docs/http.md lacks {flag}"


def test_the_ci_script_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```(?:sh|bash)\n(.*?)```", README.read_text("utf-8"), re.S)
    (install_and_test,) = [c.strip() for c in commands if "pytest" in c and "pip install" in c]
    assert install_and_test in (ROOT / ".ci" / "run").read_text("utf-8")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCED.sub("", path.read_text("utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCED.sub("", page.read_text("utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto: are not ours to check
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
            if not resolved.exists() or (anchor and anchor not in anchors(resolved)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_readme_links_every_docs_page() -> None:
    linked = {target.partition("#")[0] for target in LINK.findall(README.read_text("utf-8"))}
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in linked, f"README does not link docs/{page.name}"
