"""The MCP face of flow_mcp: imports ``flowhunt``, never the reverse.

``app`` builds the server; ``tools`` are thin; ``arguments`` and ``results`` are their schema and texts; ``runner``
follows turns; ``callers`` says who calls; ``resources`` and ``http`` are the rest of the MCP surface.
"""
