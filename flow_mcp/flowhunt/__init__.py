"""Everything that talks to or reasons about FlowHunt. Knows nothing of MCP.

``client`` speaks HTTP; ``wire`` holds FlowHunt's raw models; ``events``, ``turn``, ``cursor`` and ``digest`` are
pure; ``follow`` polls a turn to its end; ``send`` sends a message exactly once.
"""
