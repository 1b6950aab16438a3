"""Registry and packaging metadata: server.json matches the settings, pyproject carries what PyPI shows."""

from __future__ import annotations

import json
import tomllib
import typing
from typing import Any

from flow_mcp import __version__
from flow_mcp.config import ENV_VARS, HTTP_ONLY, Settings

from ..support.servers import ROOT

SERVER_JSON = ROOT / "server.json"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def environment_variables() -> list[dict[str, Any]]:
    """server.json's environmentVariables, generated from Settings (the single source of truth)."""
    entries = []
    for field, name in ENV_VARS.items():
        if field in HTTP_ONLY:
            continue
        info = Settings.model_fields[field]
        entry: dict[str, Any] = {
            "name": name,
            "description": info.description,
            "isRequired": name == "FLOWHUNT_API_KEY",
            "isSecret": name == "FLOWHUNT_API_KEY",
            "format": "boolean"
            if info.annotation is bool
            else "number"
            if info.annotation in (int, float)
            else "string",
        }
        if info.default is not None:
            entry["default"] = str(info.default).lower() if info.annotation is bool else str(info.default)
        choices = typing.get_args(info.annotation) if typing.get_origin(info.annotation) is typing.Literal else ()
        if choices:
            entry["choices"] = list(choices)
        entries.append(entry)
    return entries


def test_server_json_lists_exactly_the_settings_with_only_the_key_secret() -> None:
    server = json.loads(SERVER_JSON.read_text("utf-8"))
    (package,) = server["packages"]
    variables = package["environmentVariables"]
    assert [v["name"] for v in variables] == [name for field, name in ENV_VARS.items() if field not in HTTP_ONLY]
    assert [v["name"] for v in variables if v["isSecret"]] == ["FLOWHUNT_API_KEY"]
    assert variables == environment_variables()


def test_server_json_names_this_package_and_version_for_uvx_over_stdio() -> None:
    server = json.loads(SERVER_JSON.read_text("utf-8"))
    (package,) = server["packages"]
    assert server["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    assert server["version"] == package["version"] == __version__
    # The version lives in one place, which hatch reads.
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "flow_mcp/_version.py"
    assert package["registryType"] == "pypi" and package["identifier"] == PYPROJECT["project"]["name"]
    assert package["transport"] == {"type": "stdio"} and package["runtimeHint"] == "uvx"
    assert len(server["description"]) <= 100
    # PyPI ownership check of the MCP registry: the README carries the server's name.
    assert f"mcp-name: {server['name']}" in (ROOT / "README.md").read_text("utf-8")


def test_pyproject_carries_the_pypi_metadata() -> None:
    project = PYPROJECT["project"]
    assert {"Homepage", "Repository", "Issues"} <= set(project["urls"])
    assert "mcp" in project["keywords"]
    assert any(c.startswith("Topic ::") for c in project["classifiers"])
    assert project["scripts"]["flow-mcp"] == "flow_mcp.cli:main"
