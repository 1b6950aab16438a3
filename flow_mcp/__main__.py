from flow_mcp.cli import main

main()
