"""What every fuzz test checks: a tool call ends in a result or one clear error, and FlowHunt sees only its paths."""

from __future__ import annotations

import json
import re

from mcp_types import CallToolResult, TextContent

from .servers import SECRET_KEY, text_of

EXPECTED_PATH = re.compile(
    r"/v2/auth/me|/v3/flow-assistants/create"
    r"|/v3/flow-assistants/[A-Za-z0-9_-]{1,128}/(invoke|invocation_response/[0-9]{1,20})"
)


def assert_handled(result: CallToolResult, tool: str) -> None:
    """A normal result, or a tool error with one clear text block; never a crash of flow_mcp or the SDK."""
    assert isinstance(result, CallToolResult)
    text = text_of(result)
    # What a stdio or HTTP transport must write: UTF-8 only (no lone surrogate), and never the key.
    written = json.dumps(result.model_dump(mode="json"), ensure_ascii=False).encode("utf-8").decode("utf-8")
    assert SECRET_KEY not in written
    if not result.is_error:
        assert result.structured_content is not None, text
        return
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent), result.content
    assert text.strip()
    assert "Traceback" not in text, text
    assert "internal error" not in text, text  # the text of server._tool_errors' crash branch
    assert text.strip() != f"Error executing tool {tool}", "the SDK's text for an exception that escaped the tool"
