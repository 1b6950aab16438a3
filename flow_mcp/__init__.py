"""flow_mcp: an MCP server for FlowHunt's AI Flow Assistant."""

__version__ = "0.1.0"
