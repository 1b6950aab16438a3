#!/bin/sh
# Claude Code: register flow_mcp (or print the line for this install with `flow-mcp config claude-code`).
# Use an absolute path: Claude Code starts the server without your shell's PATH in some setups.

# With your FlowHunt account (add --scope user to have it in every project):
claude mcp add flowhunt --env FLOWHUNT_API_KEY=your-flowhunt-api-key -- /absolute/path/to/flow_mcp/.venv/bin/flow-mcp serve

# Without an account, against the built-in FlowHunt simulator:
claude mcp add flowhunt-sandbox -- /absolute/path/to/flow_mcp/.venv/bin/flow-mcp serve --sandbox

# Check it: `claude mcp list` shows flowhunt as connected; in Claude Code, /mcp lists its tools.
