#!/usr/bin/env bash
# Two --stateless flow-mcp replicas on one FlowHunt key, sharing its request budget, its 429 pauses, the
# one-turn-per-session rule and cancellation through Redis (docs/replicas.md). Put a load balancer in front of
# ports 8001 and 8002 (no sticky sessions needed). Ctrl-C stops all three processes.
#
# Needs: FLOWHUNT_API_KEY; redis-server (Debian: apt-get install redis-server); flow-mcp with the Redis client:
# pip install "flow-mcp[redis]". Beyond loopback, set FLOW_MCP_TOKENS_FILE too (docs/http.md).
# Optional: REDIS_PORT (6379), PORT_A (8001), PORT_B (8002), FLOW_MCP (the flow-mcp command), or
# FLOW_MCP_REDIS_URL to use a Redis you run already (then none is started here).
set -euo pipefail

REDIS_PORT="${REDIS_PORT:-6379}"
FLOW_MCP="${FLOW_MCP:-flow-mcp}"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait' EXIT

if [ -z "${FLOW_MCP_REDIS_URL:-}" ]; then
  export FLOW_MCP_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
fi

"$FLOW_MCP" serve --transport http --stateless --port "${PORT_A:-8001}" &
pids+=($!)
"$FLOW_MCP" serve --transport http --stateless --port "${PORT_B:-8002}" &
pids+=($!)
wait -n  # any of them ending ends the example (the trap stops the rest)
