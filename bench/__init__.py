"""Benchmark of flow_mcp's polling against the two polling loops of today's public FlowHunt clients.

Run it with ``python -m bench`` (``--quick`` for a smoke run). See ``bench/run.py`` for what is measured.
"""
