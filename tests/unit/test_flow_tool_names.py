"""Properties of flow tool names and of choosing flows: whatever FlowHunt calls a flow, its tool name is one every
host accepts, the same on every run, and no two chosen flows share one."""

from __future__ import annotations

import random

from hypothesis import example, given
from hypothesis import strategies as st

from flow_mcp.flowhunt.catalogue import TOOL_NAME, base_name, chosen, parse_choice, tool_names
from flow_mcp.flowhunt.wire import FlowSummary
from flow_mcp.sandbox import DEFAULT_FLOWS

# Any text at all: lone surrogates (what a broken JSON escape gives), control characters, every script.
ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=500)
NAMES = st.one_of(
    ANY_TEXT,
    st.sampled_from(["", " ", "___", "---", "…", "✓✓", "数据分析", "Sales Bot", "Sales-Bot", "sales_bot", "x" * 500]),
)
IDS = st.one_of(ANY_TEXT.filter(bool), st.uuids().map(str))


@given(name=NAMES, flow_id=IDS)
@example(name="", flow_id="f")
@example(name="\ud800\udfff", flow_id="\udc00")
@example(name="x" * 500, flow_id="y" * 500)
def test_any_name_and_id_give_a_valid_tool_name_that_does_not_change(name: str, flow_id: str) -> None:
    (named,) = tool_names([(flow_id, name)]).values()
    assert TOOL_NAME.fullmatch(named) and named.startswith("flow_")
    assert named == tool_names([(flow_id, name)])[flow_id] == base_name(name)  # alone, it clashes with nobody


@given(flows=st.dictionaries(IDS, NAMES, max_size=40), seed=st.integers())
def test_a_set_of_flows_gets_unique_valid_names_whatever_their_order(flows: dict[str, str], seed: int) -> None:
    names = tool_names(flows.items())
    assert set(names) == set(flows)
    assert len(set(names.values())) == len(names)
    assert all(TOOL_NAME.fullmatch(name) for name in names.values())
    shuffled = list(flows.items())
    random.Random(seed).shuffle(shuffled)
    assert tool_names(shuffled) == names  # the order FlowHunt lists them in changes nothing


@given(name=NAMES, ids=st.lists(IDS, min_size=2, max_size=6, unique=True))
def test_flows_of_one_name_each_get_a_suffix_of_their_own_id(name: str, ids: list[str]) -> None:
    names = tool_names((flow_id, name) for flow_id in ids)
    assert len(set(names.values())) == len(ids)
    assert all(named != base_name(name) for named in names.values())
    # A flow's suffixed name depends on its own name and id only: adding another twin does not move it.
    assert tool_names((flow_id, name) for flow_id in [*ids, "another twin"])[ids[0]] == names[ids[0]]


def test_the_default_catalogue_gets_readable_names_and_the_twins_a_suffix() -> None:
    names = tool_names((flow.id, flow.name) for flow in DEFAULT_FLOWS)
    faq, support, sales_dash, sales, scheduler, email, echo, report = (names[flow.id] for flow in DEFAULT_FLOWS)
    assert (faq, support, scheduler, email, echo) == (
        "flow_faq_bot_en",
        "flow_zakaznicka_podpora",  # accents folded, the check mark dropped
        "flow_meeting_scheduler",
        "flow_customer_email_sender",
        "flow_echo_variables_attachments",
    )
    # "Sales-Bot" and "Sales Bot" both read as flow_sales_bot: each gets six hex digits of its id.
    assert sales_dash != sales
    assert all(
        name.startswith("flow_sales_bot_") and len(name) == len("flow_sales_bot_") + 6 for name in (sales, sales_dash)
    )
    # The 90-character name is cut to 64 characters, at a word if the cut falls on one.
    assert len(DEFAULT_FLOWS[7].name) > 64
    assert report == "flow_quarterly_revenue_report_generator_for_the_central_european"
    assert len(report) == 64


def summary(flow_id: str, name: str) -> FlowSummary:
    return FlowSummary(id=flow_id, name=name)


def test_a_choice_names_flows_by_id_or_by_a_glob_of_the_name_ignoring_case() -> None:
    flows = [summary("a1", "Sales Bot"), summary("b2", "sales-bot"), summary("c3", "FAQ [EN]"), summary("d4", "Echo")]
    assert chosen(flows, parse_choice("all"), ()) == flows
    assert [f.id for f in chosen(flows, parse_choice("SALES*"), ())] == ["a1", "b2"]
    assert [f.id for f in chosen(flows, parse_choice(" d4 , faq [[]en]"), ())] == ["c3", "d4"]  # [[] is a literal [
    assert [f.id for f in chosen(flows, parse_choice("echo"), ())] == ["d4"]  # a plain name is an exact name
    assert [f.id for f in chosen(flows, parse_choice("ALL"), parse_choice("*bot,C3"))] == ["d4"]
    assert chosen(flows, parse_choice(""), ()) == []
