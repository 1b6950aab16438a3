# Claude Code, connected to a shared flow-mcp server over streamable HTTP (see README: "Serving a team over HTTP").
claude mcp add --transport http flowhunt http://127.0.0.1:8000/mcp --header "Authorization: Bearer your-flow-mcp-token"
# With a server started with --flowhunt-key-from-client, also send your own FlowHunt key:
claude mcp add --transport http flowhunt-own-key http://127.0.0.1:8000/mcp --header "Authorization: Bearer your-flow-mcp-token" --header "X-FlowHunt-Api-Key: your-flowhunt-api-key"
