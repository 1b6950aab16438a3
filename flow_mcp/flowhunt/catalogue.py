"""Which published flows become tools of their own, and the tool names they get. Pure: no I/O.

A choice (FLOW_MCP_FLOW_TOOLS, FLOW_MCP_FLOW_TOOLS_EXCLUDE) is ``all`` or a comma list of flow ids and name globs
(``fnmatch``, ignoring case); a flow is chosen when an item of the list names it and no item of the exclusions does.

A tool name is ``flow_`` and the flow's name in ASCII: lower case, every run of other characters one ``_``, cut to
64 characters, the most hosts accept (``^[a-zA-Z0-9_-]{1,64}$``). Flows whose names give the same tool name each get
a suffix from a digest of their id. Nothing but the names and ids of the chosen flows goes in, so a flow keeps its
tool name across restarts, and whichever order FlowHunt lists the flows in.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from flow_mcp.flowhunt.wire import FlowSummary

PREFIX = "flow_"
MAX_TOOL_NAME = 64
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # used with fullmatch
UNNAMED = "unnamed"
_SUFFIX_HEX = 6  # 16.7 million values: two flows of one name get different suffixes all but surely
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9]+")


def parse_choice(text: str) -> tuple[str, ...]:
    """The items of a choice list, stripped, without empty ones."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def names_flow(item: str, flow: FlowSummary) -> bool:
    """Whether one item of a choice list names ``flow``: ``all``, its id, or a glob its name matches (any case)."""
    wanted = item.casefold()
    return wanted in ("all", flow.id.casefold()) or fnmatch.fnmatchcase(flow.name.casefold(), wanted)


def chosen(flows: Iterable[FlowSummary], include: Sequence[str], exclude: Sequence[str]) -> list[FlowSummary]:
    """The flows ``include`` names and ``exclude`` does not, in their order."""
    return [
        flow
        for flow in flows
        if any(names_flow(item, flow) for item in include) and not any(names_flow(item, flow) for item in exclude)
    ]


def unmatched(flows: Sequence[FlowSummary], items: Sequence[str]) -> list[str]:
    """The items that name none of ``flows`` (a typo, or a flow that is gone): worth a warning."""
    return [item for item in items if not any(names_flow(item, flow) for flow in flows)]


def base_name(name: str) -> str:
    """``flow_`` and the name in ASCII, lower case, other characters as ``_``, at most 64 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_A_NAME.sub("_", ascii_name).strip("_").lower() or UNNAMED
    return (PREFIX + slug)[:MAX_TOOL_NAME].rstrip("_")


def suffixed_name(name: str, flow_id: str, width: int = _SUFFIX_HEX) -> str:
    """The base name cut short enough for ``_`` and ``width`` hex digits of the id's SHA-256."""
    digest = hashlib.sha256(flow_id.encode("utf-8", "surrogatepass")).hexdigest()[:width]
    return f"{base_name(name)[: MAX_TOOL_NAME - width - 1].rstrip('_')}_{digest}"


def tool_names(flows: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A unique tool name for each ``(flow_id, name)``, by flow id.

    Every flow whose name clashes gets the suffix of its id, not only the second one, so the result does not
    depend on the order. A suffixed name that clashes again (with another flow's plain name, say) gets a longer
    digest, until no two flows share a name.
    """
    named = dict(flows)
    names = {flow_id: base_name(name) for flow_id, name in named.items()}
    # The longest digest that leaves room for "flow_": 58 hex digits; two distinct ids all but never share one.
    for width in range(_SUFFIX_HEX, MAX_TOOL_NAME - len(PREFIX), 2):
        count = Counter(names.values())
        clashing = [flow_id for flow_id, name in names.items() if count[name] > 1]
        if not clashing:
            break
        for flow_id in clashing:
            names[flow_id] = suffixed_name(named[flow_id], flow_id, width)
    return names
