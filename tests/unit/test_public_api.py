"""The public API is pinned: flow_mcp.__all__ is exactly this list, and every name in it imports."""

from __future__ import annotations

import importlib

import pytest

import flow_mcp

PUBLIC = [
    "APIError",
    "AuthError",
    "ConfigurationError",
    "Cursor",
    "Event",
    "FlowHuntClient",
    "FlowHuntError",
    "FlowMCPError",
    "InvalidArgumentError",
    "MissingKeyError",
    "NotDeliveredError",
    "NotFoundError",
    "OutOfCreditsError",
    "RateLimitError",
    "RawEvent",
    "ResponseShapeError",
    "ResponseTooLargeError",
    "Sent",
    "ServerError",
    "Settings",
    "TransportError",
    "TurnInProgressError",
    "TurnProgress",
    "TurnStatus",
    "ValidationError",
    "__version__",
    "decode_cursor",
    "follow",
    "normalize",
    "send_message",
    "summarize",
]


def test_all_names_exactly_the_public_api() -> None:
    assert flow_mcp.__all__ == PUBLIC  # a change here is a change of the public API: say so in the changelog


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports_from_the_package_root(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from flow_mcp import {name}", namespace)  # noqa: S102 - the import statement a user writes
    assert namespace[name] is getattr(importlib.import_module("flow_mcp"), name) is not None


def test_every_error_of_the_api_is_a_flow_mcp_error() -> None:
    errors = [getattr(flow_mcp, name) for name in PUBLIC if name.endswith("Error")]
    assert errors and all(issubclass(error, flow_mcp.FlowMCPError) for error in errors)
