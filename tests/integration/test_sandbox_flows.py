"""The simulator's V2 published-flow API and hook resumes, exercised over real HTTP on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx2
import pytest

from flow_mcp.sandbox import CALL_KINDS, DEFAULT_FLOWS, SandboxConfig, SandboxServer, flow_turn
from flow_mcp.sandbox.flows import FlowInputs

from .test_sandbox import (
    KEY,
    WORKSPACE,
    Event,
    collect_until,
    create,
    has_action,
    has_answer,
    invoke,
    poll,
    scheduled,
    stamp,
)

FLOWS = "/v2/flows/sessions"
FAQ, SUPPORT, SALES_DASH, SALES, SCHEDULER, EMAIL, ECHO, REPORT = (flow.id for flow in DEFAULT_FLOWS)
SUMMARY_FIELDS = {
    "id", "name", "description", "flow_type", "component_count", "executed_at", "category_id", "enable_cache",
    "last_modified", "engine_version", "integration_slugs",
}  # fmt: skip
DETAIL_FIELDS = SUMMARY_FIELDS | {"detailed_description", "try_flow_input_placeholder", "disable_text_input", "config"}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(pacing=0.02, team_keys="fh-team-key=ws-team")) as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox.url, headers={"Api-Key": KEY}, timeout=10) as http:
        yield http


def list_flows(client: httpx2.Client, body: object = None) -> httpx2.Response:
    return client.post("/v2/flows/", params={"workspace_id": WORKSPACE}, json={} if body is None else body)


def listed(client: httpx2.Client, **body: object) -> list[dict[str, object]]:
    response = list_flows(client, body)
    assert response.status_code == 200, response.text
    flows: list[dict[str, object]] = response.json()
    return flows


def open_flow(client: httpx2.Client, flow_id: str, **body: object) -> str:
    response = client.post(
        f"{FLOWS}/from_flow/create", params={"workspace_id": WORKSPACE}, json={"flow_id": flow_id, **body}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


def flow_invoke(client: httpx2.Client, session_id: str, message: str) -> dict[str, object]:
    response = client.post(f"{FLOWS}/{session_id}/invoke", json={"message": message})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def follow(client: httpx2.Client, session_id: str, done: Callable[[list[Event]], bool]) -> list[Event]:
    return collect_until(client, session_id, 0, done, base=FLOWS)


def resume(client: httpx2.Client, session_id: str, **body: object) -> httpx2.Response:
    return client.post(f"{FLOWS}/{session_id}/resume-hook", json=body)


def metadata(event: Event) -> dict[str, object]:
    meta = event["metadata"]
    assert isinstance(meta, dict)
    return meta


def answers(events: list[Event]) -> list[str]:
    return [str(metadata(e)["message"]) for e in events if e["event_type"] == "ai" and e["action_type"] == "message"]


def waiting_hook(client: httpx2.Client, session_id: str, action_type: str) -> dict[str, object]:
    events = follow(client, session_id, has_action(action_type))
    return metadata(next(e for e in events if e["action_type"] == action_type))


def loc_and_type(response: httpx2.Response) -> list[tuple[list[object], str]]:
    assert response.status_code == 422, response.text
    return [(error["loc"], error["type"]) for error in response.json()["detail"]]


# --- the catalogue --------------------------------------------------------------------------------


def test_the_default_catalogue_has_names_a_tool_namer_must_work_at() -> None:
    names = [flow.name for flow in DEFAULT_FLOWS]
    assert len(names) >= 6 and len({flow.id for flow in DEFAULT_FLOWS}) == len(names)
    assert any(not name.isascii() for name in names) and any(len(name) > 64 for name in names)
    assert [name for name in names if re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name)] == ["Sales-Bot"]
    snake = [re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") for name in names]
    assert len(set(snake)) == len(snake) - 1  # "Sales-Bot" and "Sales Bot" collide
    courses = {flow.course for flow in DEFAULT_FLOWS}
    assert courses == {"answer", "ask", "approval", "echo"}


def test_listing_gives_every_flow_with_flowhunts_fields(client: httpx2.Client) -> None:
    flows = listed(client)
    assert [flow["id"] for flow in flows] == [flow.id for flow in DEFAULT_FLOWS]
    assert all(set(flow) == SUMMARY_FIELDS for flow in flows)
    assert "Zákaznícka podpora ✓" in [flow["name"] for flow in flows]
    assert {flow["engine_version"] for flow in flows} == {"v2", "v3"}


@pytest.mark.parametrize("limit", [2, 3])
def test_paging_by_scroll_id_visits_each_flow_once_and_ends_on_a_short_page(client: httpx2.Client, limit: int) -> None:
    seen: list[object] = []
    body: dict[str, object] = {"limit": limit}
    for _ in range(10):
        page = listed(client, **body)
        assert len(page) <= limit
        seen += [flow["id"] for flow in page]
        if len(page) < limit:
            break
        body = {"limit": limit, "pagination": {"scroll_id": page[-1]["id"]}}
    assert seen == [flow.id for flow in DEFAULT_FLOWS]


def test_an_unknown_scroll_id_gives_an_empty_page(client: httpx2.Client) -> None:
    assert listed(client, pagination={"scroll_id": "no-such-flow", "sorting_key_value": "x"}) == []


def test_filters_match_names_case_insensitively_and_categories_and_types_exactly(client: httpx2.Client) -> None:
    def names(**body: object) -> list[object]:
        return [flow["name"] for flow in listed(client, **body)]

    assert names(name="BOT") == ["FAQ Bot (EN)", "Sales-Bot", "Sales Bot"]
    assert names(name="podpora ✓") == ["Zákaznícka podpora ✓"]
    assert names(category_id="cat-sales") == ["Sales-Bot", "Sales Bot"]
    assert names(name="bot", category_id="cat-support", limit="5") == ["FAQ Bot (EN)"]  # "5": pydantic's lax int
    assert names(flow_type="v") == [] and len(names(flow_type="p")) == len(DEFAULT_FLOWS)


def test_listing_needs_a_key_in_either_header_and_the_keys_own_workspace(sandbox: SandboxServer) -> None:
    with httpx2.Client(base_url=sandbox.url) as http:
        url, body = "/v2/flows/", {"limit": 1}
        params = {"workspace_id": WORKSPACE}
        assert http.post(url, params=params, json=body).status_code == 401
        assert http.post(url, params=params, json=body, headers={"Api-Key": "fh-wrong"}).status_code == 401
        assert http.post(url, params=params, json=body, headers={"Api-Key": KEY}).status_code == 200
        assert http.post(url, params=params, json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        foreign = http.post(url, params={"workspace_id": "ws-team"}, json=body, headers={"Api-Key": KEY})
        assert foreign.status_code == 403
        missing = http.post(url, json=body, headers={"Api-Key": KEY})
        assert loc_and_type(missing) == [(["query", "workspace_id"], "missing")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"limit": "ten"}, [(["body", "limit"], "int_parsing")]),
        ({"limit": 2.5}, [(["body", "limit"], "int_from_float")]),
        ({"limit": None}, [(["body", "limit"], "int_type")]),
        ({"limit": 0}, [(["body", "limit"], "greater_than_equal")]),
        ({"flow_type": "x"}, [(["body", "flow_type"], "literal_error")]),
        ({"name": 5, "category_id": []}, [(["body", "name"], "string_type"), (["body", "category_id"], "string_type")]),
        ({"pagination": 3}, [(["body", "pagination"], "model_type")]),
        ({"pagination": {"scroll_id": 4}}, [(["body", "pagination", "scroll_id"], "string_type")]),
        ([], [(["body"], "model_attributes_type")]),
    ],
)
def test_bad_listing_bodies_are_fastapi_422s(
    client: httpx2.Client, body: object, expected: list[tuple[list[object], str]]
) -> None:
    assert loc_and_type(list_flows(client, body)) == expected


def test_a_listing_without_a_body_or_with_broken_json_is_422(client: httpx2.Client) -> None:
    params = {"workspace_id": WORKSPACE}
    assert loc_and_type(client.post("/v2/flows/", params=params)) == [(["body"], "missing")]
    broken = client.post("/v2/flows/", params=params, content=b'{"limit": ')
    assert [error["type"] for error in broken.json()["detail"]] == ["json_invalid"]


def test_one_flow_comes_with_its_detail_and_unknown_or_foreign_flows_are_404(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    response = client.get(f"/v2/flows/{EMAIL}", params={"workspace_id": WORKSPACE})
    assert response.status_code == 200
    flow = response.json()
    assert set(flow) == DETAIL_FIELDS and flow["name"] == "Customer Email Sender"
    assert flow["try_flow_input_placeholder"] and flow["integration_slugs"] == ["gmail"]
    assert len(flow["config"]["nodes"]) == flow["component_count"] == len(flow["config"]["edges"]) + 1
    assert client.get("/v2/flows/nope", params={"workspace_id": WORKSPACE}).json() == {"detail": "Flow not found"}
    with httpx2.Client(base_url=sandbox.url, headers={"Api-Key": "fh-team-key"}) as team:
        assert team.get(f"/v2/flows/{EMAIL}", params={"workspace_id": "ws-team"}).status_code == 404
        assert team.get(f"/v2/flows/{EMAIL}", params={"workspace_id": WORKSPACE}).status_code == 403
    assert client.get(f"/v2/flows/{EMAIL}").status_code == 422


def test_each_workspace_lists_only_its_own_flows(sandbox: SandboxServer, client: httpx2.Client) -> None:
    added = client.post("/_sandbox/flows", json={"name": "Team Only", "workspace_id": "ws-team"})
    assert added.status_code == 201
    with httpx2.Client(base_url=sandbox.url, headers={"Api-Key": "fh-team-key"}) as team:
        page = team.post("/v2/flows/", params={"workspace_id": "ws-team"}, json={}).json()
    assert [flow["name"] for flow in page] == ["Team Only"]
    assert "Team Only" not in [flow["name"] for flow in listed(client)]


# --- the catalogue's knob and controls ------------------------------------------------------------


def test_flows_added_at_run_time_are_listed_last_and_can_be_removed(client: httpx2.Client) -> None:
    (added,) = client.post("/_sandbox/flows", json=[{"name": "Late Flow", "course": "echo"}]).json()
    assert listed(client)[-1]["id"] == added["id"] and added["course"] == "echo"
    session_id = open_flow(client, str(added["id"]))
    assert client.delete(f"/_sandbox/flows/{added['id']}").status_code == 200
    assert client.delete(f"/_sandbox/flows/{added['id']}").status_code == 404
    assert len(listed(client)) == len(DEFAULT_FLOWS)
    flow_invoke(client, session_id, "still here?")  # an open session outlives its flow's unpublishing
    assert answers(follow(client, session_id, has_answer))


@pytest.mark.parametrize(
    "bad", [{}, {"name": ""}, {"name": "x", "course": "sing"}, {"name": "x", "colour": "red"}, {"name": 5}, "text"]
)
def test_malformed_flows_are_refused_by_the_control(client: httpx2.Client, bad: object) -> None:
    assert client.post("/_sandbox/flows", json=bad).status_code == 422
    assert len(client.get("/_sandbox/flows").json()) == len(DEFAULT_FLOWS)


def test_the_flows_knob_replaces_the_catalogue_and_empty_text_restores_the_defaults(client: httpx2.Client) -> None:
    custom = [{"id": "flow-a", "name": "Only One", "description": "d", "integration_slugs": ["slack"]}]
    assert client.post("/_sandbox/config", json={"flows": json.dumps(custom)}).status_code == 200
    (only,) = listed(client)
    assert (only["id"], only["name"], only["integration_slugs"]) == ("flow-a", "Only One", ["slack"])
    client.post("/_sandbox/config", json={"flows": "[]"})
    assert listed(client) == []
    client.post("/_sandbox/config", json={"flows": ""})
    assert len(listed(client)) == len(DEFAULT_FLOWS)
    twins = '[{"name": "a", "id": "x"}, {"name": "b", "id": "x"}]'
    assert client.post("/_sandbox/config", json={"flows": twins}).status_code == 422


def test_the_flows_knob_is_read_from_the_environment_and_checked() -> None:
    config = SandboxConfig.from_env({"FLOWHUNT_SANDBOX_FLOWS": '[{"name": "From Env"}]'})
    with SandboxServer(config) as server, httpx2.Client(base_url=server.url, headers={"Api-Key": KEY}) as http:
        assert [flow["name"] for flow in listed(http)] == ["From Env"]
    for bad in ("{", '{"name": "not a list"}', '[{"name": "a", "id": "x"}, {"name": "b", "id": "x"}]'):
        with pytest.raises(ValueError):
            SandboxConfig.from_env({"FLOWHUNT_SANDBOX_FLOWS": bad})


# --- flow sessions --------------------------------------------------------------------------------


def test_a_flow_session_answers_after_tool_calls_quoting_the_message(client: httpx2.Client) -> None:
    session_id = open_flow(client, SALES, variables={"company": "ACME"}, flow_branch="P")
    message = "What does the Pro plan cost in €?"
    invocation = flow_invoke(client, session_id, message)
    assert set(invocation) == {"message_id", "created_at", "cached_events"} and invocation["cached_events"] == []
    events = follow(client, session_id, has_answer)
    human, *rest = events
    assert human["event_type"] == "human" and metadata(human)["message"] == message
    assert stamp(human) == int(str(invocation["created_at"])) and all(stamp(e) > stamp(human) for e in rest)
    kinds = [event["action_type"] for event in rest]
    assert {"loading", "v3_tool_call_start", "v3_tool_call_end", "tool_call"} <= set(kinds)
    assert kinds[-1] == "message" and message in answers(events)[0]
    assert metadata(rest[-1])["sender"] == {"sender_name": "Sales Bot"}
    assert {e["session_id"] for e in events} == {session_id} and {e["workspace_id"] for e in events} == {WORKSPACE}


def test_opening_a_session_refuses_unknown_flows_and_bad_bodies(sandbox: SandboxServer, client: httpx2.Client) -> None:
    url, params = f"{FLOWS}/from_flow/create", {"workspace_id": WORKSPACE}
    assert client.post(url, params=params, json={"flow_id": "nope"}).json() == {"detail": "Flow not found"}
    cases: list[tuple[object, list[tuple[list[object], str]]]] = [
        ({"flow_id": FAQ, "variables": {"n": 1, "ok": "yes"}}, [(["body", "variables", "n"], "string_type")]),
        ({"flow_id": FAQ, "variables": ["a"]}, [(["body", "variables"], "dict_type")]),
        ({"flow_id": FAQ, "flow_branch": "X"}, [(["body", "flow_branch"], "literal_error")]),
        ({"variables": {}}, [(["body", "flow_id"], "missing")]),
        ({"flow_id": 7}, [(["body", "flow_id"], "string_type")]),
        (None, [(["body"], "missing")]),
    ]
    for body, expected in cases:
        assert loc_and_type(client.post(url, params=params, json=body)) == expected
    with httpx2.Client(base_url=sandbox.url) as anonymous:
        assert anonymous.post(url, params=params, json={"flow_id": FAQ}).status_code == 401


def test_flow_and_assistant_sessions_are_unknown_on_each_others_paths(client: httpx2.Client) -> None:
    assistant = create(client)
    flow = open_flow(client, FAQ)
    assert client.post(f"{FLOWS}/{assistant}/invoke", json={"message": "hi"}).status_code == 404
    assert client.post(f"/v3/flow-assistants/{flow}/invoke", json={"message": "hi"}).status_code == 404
    assert client.post(f"{FLOWS}/{assistant}/invocation_response/0").status_code == 404
    assert client.post(f"{FLOWS}/nope/invocation_response/0").json() == {"detail": "Session not found"}


def test_a_flow_invoke_validates_its_body_and_ignores_fields_it_does_not_have(client: httpx2.Client) -> None:
    session_id = open_flow(client, FAQ)
    url = f"{FLOWS}/{session_id}/invoke"
    assert loc_and_type(client.post(url, json={})) == [(["body", "message"], "missing")]
    assert loc_and_type(client.post(url, json={"message": 7})) == [(["body", "message"], "string_type")]
    assert loc_and_type(client.post(f"{FLOWS}/{session_id}/invocation_response/x")) == [
        (["path", "from_timestamp"], "int_parsing")
    ]
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []
    assert client.post(url, json={"message": "hi", "ai_model": "GPT5"}).status_code == 200


def test_the_assistants_trigger_words_work_in_flow_sessions(client: httpx2.Client) -> None:
    session_id = open_flow(client, FAQ)
    flow_invoke(client, session_id, "why did my order fail")
    events = follow(client, session_id, has_action("failed"))
    assert not has_answer(scheduled(client, session_id))
    assert "v3_flow_assistant_init" not in {e["action_type"] for e in events}  # no assistant set-up in a flow


def test_a_cached_flow_returns_a_repeated_question_with_the_invoke(client: httpx2.Client) -> None:
    first = open_flow(client, FAQ)
    assert flow_invoke(client, first, "Do you ship to Slovakia?")["cached_events"] == []
    original = answers(follow(client, first, has_answer))
    second = open_flow(client, FAQ)
    cached = flow_invoke(client, second, "Do you ship to Slovakia?")["cached_events"]
    assert isinstance(cached, list) and answers(cached) == original
    polled = follow(client, second, has_answer)
    assert {str(e["event_id"]) for e in cached} <= {str(e["event_id"]) for e in polled}
    assert client.get(f"/_sandbox/sessions/{second}/invocations").json()[0]["cached"] is True
    assert flow_invoke(client, second, "Something else?")["cached_events"] == []


# --- hooks ----------------------------------------------------------------------------------------


def test_the_asking_flow_waits_on_a_hook_until_resumed_then_answers_quoting_the_reply(client: httpx2.Client) -> None:
    session_id = open_flow(client, SCHEDULER)
    flow_invoke(client, session_id, "Meet Jana about the budget")
    hook = waiting_hook(client, session_id, "hook_waiting_for_input")
    assert set(hook) == {"hook_id", "hook_name", "prompt_message"} and hook["prompt_message"]
    assert not has_answer(scheduled(client, session_id))
    reply = "Tuesday at 10:00, please"
    assert resume(client, session_id, hook_id=hook["hook_id"], message=reply).json() == {"status": "resumed"}
    events = follow(client, session_id, has_answer)
    (answer,) = answers(events)
    assert reply in answer
    assert {"v3_tool_call_start", "v3_tool_call_end"} <= {e["action_type"] for e in events}


def test_a_hook_is_one_shot_and_a_second_resume_continues_nothing(client: httpx2.Client) -> None:
    session_id = open_flow(client, SCHEDULER)
    flow_invoke(client, session_id, "Meet Jana")
    hook_id = waiting_hook(client, session_id, "hook_waiting_for_input")["hook_id"]
    assert resume(client, session_id, hook_id=hook_id, message="Monday").json() == {"status": "resumed"}
    follow(client, session_id, has_answer)
    events_then = len(scheduled(client, session_id))
    again = resume(client, session_id, hook_id=hook_id, message="Monday")
    assert again.status_code == 200 and again.json() == {"status": "already_received"}
    assert len(scheduled(client, session_id)) == events_then
    resumes = client.get(f"/_sandbox/sessions/{session_id}/resumes").json()
    assert [(r["hook_id"], r["status"]) for r in resumes] == [(hook_id, "resumed"), (hook_id, "already_received")]
    logged = [e for e in client.get("/_sandbox/requests").json() if e["kind"] == "flow_resume_hook"]
    assert [(e["hook_id"], e["resume_status"], e["status"]) for e in logged] == [
        (hook_id, "resumed", 200),
        (hook_id, "already_received", 200),
    ]


def test_an_unknown_hook_is_not_found_and_continues_nothing(client: httpx2.Client) -> None:
    session_id = open_flow(client, SCHEDULER)
    flow_invoke(client, session_id, "Meet Jana")
    waiting_hook(client, session_id, "hook_waiting_for_input")
    assert resume(client, session_id, hook_id="hook-guess", message="x").json() == {"status": "not_found"}
    assert not has_answer(scheduled(client, session_id))
    assert resume(client, "no-session", hook_id="h", message="x").status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"hook_id": "", "message": "m"}, [(["body", "hook_id"], "string_too_short")]),
        ({"hook_id": "h" * 257, "message": "m"}, [(["body", "hook_id"], "string_too_long")]),
        ({"hook_id": "h", "message": "m" * 65_537}, [(["body", "message"], "string_too_long")]),
        ({"hook_id": "h", "message": 5}, [(["body", "message"], "string_type")]),
        ({"hook_id": "h", "message": "m", "form_data": [1]}, [(["body", "form_data"], "dict_type")]),
        ({}, [(["body", "hook_id"], "missing"), (["body", "message"], "missing")]),
    ],
)
def test_bad_resume_bodies_are_fastapi_422s_and_resume_nothing(
    client: httpx2.Client, body: dict[str, object], expected: list[tuple[list[object], str]]
) -> None:
    session_id = open_flow(client, SCHEDULER)
    assert loc_and_type(resume(client, session_id, **body)) == expected
    assert client.get(f"/_sandbox/sessions/{session_id}/resumes").json() == []


def test_the_longest_allowed_hook_id_and_message_are_accepted(client: httpx2.Client) -> None:
    session_id = open_flow(client, SCHEDULER)
    response = resume(client, session_id, hook_id="h" * 256, message="m" * 65_536, form_data={"a": [1]})
    assert response.json() == {"status": "not_found"}


@pytest.mark.parametrize(
    ("message", "form_data", "verdict"),
    [
        ("ok", {"approved": True, "hitl_id": "x"}, "Approved"),
        ("approve", None, "Approved"),
        ("reject: wrong address", {"approved": False, "reason": "wrong address"}, "Rejected"),
        ("no, not yet", None, "Rejected"),
        ("yes", {"approved": False}, "Rejected"),  # form_data.approved wins over the message
    ],
)
def test_the_approval_flow_names_its_tool_and_the_resume_decides(
    client: httpx2.Client, message: str, form_data: dict[str, object] | None, verdict: str
) -> None:
    session_id = open_flow(client, EMAIL)
    flow_invoke(client, session_id, "Tell Jana the order shipped")
    request = waiting_hook(client, session_id, "hitl_approval_requested")
    assert {"hook_id", "hitl_id", "tool_name", "tool_args", "tool_description"} <= set(request)
    assert request["tool_name"] == "send_email" and isinstance(request["tool_args"], dict)
    body: dict[str, object] = {"hook_id": request["hook_id"], "message": message}
    if form_data is not None:
        body["form_data"] = form_data
    assert resume(client, session_id, **body).json() == {"status": "resumed"}
    events = follow(client, session_id, has_answer)
    (answer,) = answers(events)
    assert answer.startswith(verdict) and message in answer
    ran = [e for e in events if e["action_type"] == "v3_tool_call_start" and metadata(e)["tool_name"] == "send_email"]
    assert bool(ran) == (verdict == "Approved")
    if form_data and form_data.get("reason"):
        assert str(form_data["reason"]) in answer


def test_resume_hook_accepts_assistant_sessions_by_default(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "ask me with a hook")
    events = collect_until(client, session_id, 0, has_action("hook_waiting_for_input"))
    hook_id = metadata(events[-1])["hook_id"]
    assert resume(client, session_id, hook_id=hook_id, message="GPT4.1").json() == {"status": "resumed"}
    (answer,) = answers(collect_until(client, session_id, 0, has_answer))
    assert "GPT4.1" in answer


@pytest.mark.parametrize("refusal", [404, 405, 422])
def test_a_knob_makes_resume_hook_refuse_assistant_sessions(
    sandbox: SandboxServer, client: httpx2.Client, refusal: int
) -> None:
    sandbox.state.update_config({"assistant_resume": str(refusal)})
    session_id = create(client)
    invoke(client, session_id, "ask me with a hook")
    hook_id = metadata(collect_until(client, session_id, 0, has_action("hook_waiting_for_input"))[-1])["hook_id"]
    assert resume(client, session_id, hook_id=hook_id, message="GPT4.1").status_code == refusal
    assert not has_answer(scheduled(client, session_id))
    flow = open_flow(client, SCHEDULER)  # flow sessions are unaffected
    assert resume(client, flow, hook_id="h", message="m").json() == {"status": "not_found"}
    assert client.post("/_sandbox/config", json={"assistant_resume": "410"}).status_code == 422


def test_cancel_drops_what_the_turn_has_not_shown_and_expires_its_hook(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    asking = open_flow(client, SCHEDULER)
    flow_invoke(client, asking, "Meet Jana")
    hook_id = waiting_hook(client, asking, "hook_waiting_for_input")["hook_id"]
    assert client.post(f"{FLOWS}/{asking}/cancel").json() == {"status": "cancelled"}
    assert resume(client, asking, hook_id=hook_id, message="Monday").json() == {"status": "expired"}
    sandbox.state.update_config({"pacing": 1.0})  # a minute-long turn: cancelled long before its answer
    busy = open_flow(client, FAQ)
    flow_invoke(client, busy, "a long question")
    assert client.post(f"{FLOWS}/{busy}/cancel").json() == {"status": "cancelled"}
    remaining = scheduled(client, busy)
    assert not has_answer(remaining) and all(event["visible"] for event in remaining)
    assert client.post(f"{FLOWS}/nope/cancel").status_code == 404


# --- attachments ----------------------------------------------------------------------------------


def test_attachments_are_described_and_the_echo_flow_repeats_them_with_its_variables(client: httpx2.Client) -> None:
    session_id = open_flow(client, ECHO, variables={"lang": "sk", "tone": "friendly"})
    url = f"{FLOWS}/{session_id}/attachments"
    first = client.post(url, files={"file": ("report.pdf", b"%PDF-1.7 ...", "application/pdf")})
    assert first.status_code == 200
    described = first.json()
    assert set(described) == {"file_name", "file_type", "file_id", "type", "source"}
    assert (described["file_name"], described["file_type"]) == ("report.pdf", "application/pdf")
    client.post(url, files={"file": ("poznámky.txt", b"ahoj", "text/plain")})
    flow_invoke(client, session_id, "what did I send?")
    (answer,) = answers(follow(client, session_id, has_answer))
    assert '{"lang": "sk", "tone": "friendly"}' in answer
    assert "report.pdf" in answer and "poznámky.txt" in answer and "what did I send?" in answer


def test_an_answering_flow_names_the_files_attached_before_the_turn(client: httpx2.Client) -> None:
    session_id = open_flow(client, SUPPORT)
    client.post(f"{FLOWS}/{session_id}/attachments", files={"file": ("faktúra.pdf", b"...", "application/pdf")})
    flow_invoke(client, session_id, "Kde je moja objednávka?")
    (answer,) = answers(follow(client, session_id, has_answer))
    assert "faktúra.pdf" in answer


def test_an_upload_without_a_file_is_422_and_one_over_the_limit_is_413(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = open_flow(client, ECHO)
    url = f"{FLOWS}/{session_id}/attachments"
    assert loc_and_type(client.post(url, data={"other": "x"})) == [(["body", "file"], "missing")]
    assert loc_and_type(client.post(url, data={"file": "just text"})) == [(["body", "file"], "value_error")]
    assert loc_and_type(client.post(url, json={"file": "x"})) == [(["body", "file"], "missing")]
    sandbox.state.update_config({"max_attachment_bytes": 10})
    assert client.post(url, files={"file": ("ten.txt", b"0123456789")}).status_code == 200
    too_big = client.post(url, files={"file": ("eleven.txt", b"0123456789A")})
    assert too_big.status_code == 413 and isinstance(too_big.json()["detail"], str)
    assert client.post(f"{FLOWS}/nope/attachments", files={"file": ("a.txt", b"a")}).status_code == 404


# --- fault knobs ----------------------------------------------------------------------------------


def test_out_of_credits_answers_402_to_the_chosen_calls_only_and_starts_nothing(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = open_flow(client, FAQ)
    sandbox.state.update_config({"out_of_credits": "flow_invoke, assistant_invoke"})
    refused = client.post(f"{FLOWS}/{session_id}/invoke", json={"message": "hi"})
    assert refused.status_code == 402 and isinstance(refused.json()["detail"], str)
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []
    assert client.post(f"{FLOWS}/{session_id}/invocation_response/0").status_code == 200
    assert list_flows(client).status_code == 200
    assert client.get("/_sandbox/faults").json() == {"402": 1}
    refusals = [(e["kind"], e["status"]) for e in client.get("/_sandbox/requests").json() if e.get("fault") == "402"]
    assert refusals == [("flow_invoke", 402)]


def test_out_of_credits_all_covers_every_call_but_identifying_the_key(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = open_flow(client, FAQ)
    sandbox.state.update_config({"out_of_credits": "all"})
    calls = [
        list_flows(client),
        client.get(f"/v2/flows/{FAQ}", params={"workspace_id": WORKSPACE}),
        client.post(f"{FLOWS}/from_flow/create", params={"workspace_id": WORKSPACE}, json={"flow_id": FAQ}),
        client.post(f"{FLOWS}/{session_id}/invoke", json={"message": "hi"}),
        client.post(f"{FLOWS}/{session_id}/resume-hook", json={"hook_id": "h", "message": "m"}),
        client.post("/v3/flow-assistants/create", params={"workspace_id": WORKSPACE}),
    ]
    assert [response.status_code for response in calls] == [402] * len(calls)
    assert client.get("/v2/auth/me").status_code == 200
    assert client.post("/_sandbox/config", json={"out_of_credits": "flow_everything"}).status_code == 422


def test_the_request_log_names_every_call_kind(client: httpx2.Client) -> None:
    params = {"workspace_id": WORKSPACE}
    client.get("/v2/auth/me")
    assistant = create(client)
    invoke(client, assistant, "hi")
    poll(client, assistant, 0)
    list_flows(client)
    client.get(f"/v2/flows/{FAQ}", params=params)
    flow = open_flow(client, FAQ)
    flow_invoke(client, flow, "hi")
    poll(client, flow, 0, base=FLOWS)
    client.post(f"{FLOWS}/{flow}/attachments", files={"file": ("a.txt", b"a")})
    resume(client, flow, hook_id="h", message="m")
    client.post(f"{FLOWS}/{flow}/cancel")
    client.get("/v2/flows/")  # a known path with the wrong method is no call
    kinds = [entry["kind"] for entry in client.get("/_sandbox/requests").json()]
    assert kinds == [*CALL_KINDS, None]


def test_429_and_503_refuse_a_flow_invoke_before_it_starts(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = open_flow(client, FAQ)
    for knob, status in (("rate_429", 429), ("rate_503", 503)):
        sandbox.state.update_config({knob: 1.0})
        assert client.post(f"{FLOWS}/{session_id}/invoke", json={"message": "hi"}).status_code == status
        sandbox.state.update_config({knob: 0.0})
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []
    assert client.get("/v2/auth/me").status_code == 200


def test_a_500_on_a_flow_invoke_comes_after_the_turn_started(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = open_flow(client, SALES)
    sandbox.state.update_config({"rate_500": 1.0, "fault_only": "/invoke"})
    assert client.post(f"{FLOWS}/{session_id}/invoke", json={"message": "hi"}).status_code == 500
    (invocation,) = client.get(f"/_sandbox/sessions/{session_id}/invocations").json()
    assert invocation["fault"] == "500"
    assert answers(follow(client, session_id, has_answer))  # polls are spared by fault_only


def test_a_500_on_resume_hook_resumes_anyway_so_a_retry_is_already_received(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = open_flow(client, SCHEDULER)
    flow_invoke(client, session_id, "Meet Jana")
    hook_id = waiting_hook(client, session_id, "hook_waiting_for_input")["hook_id"]
    sandbox.state.update_config({"rate_500": 1.0, "fault_only": "/resume-hook"})
    assert resume(client, session_id, hook_id=hook_id, message="Friday").status_code == 500
    sandbox.state.update_config({"rate_500": 0.0})
    assert resume(client, session_id, hook_id=hook_id, message="Friday").json() == {"status": "already_received"}
    (answer,) = answers(follow(client, session_id, has_answer))
    assert "Friday" in answer


def test_truncation_resets_and_wrong_shapes_hit_flow_polls(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = open_flow(client, FAQ)
    flow_invoke(client, session_id, "hello")
    url = f"{FLOWS}/{session_id}/invocation_response/0"
    sandbox.state.update_config({"rate_truncated": 1.0})
    with pytest.raises(json.JSONDecodeError):
        json.loads(client.post(url).content)
    sandbox.state.update_config({"rate_truncated": 0.0, "rate_wrong_shape": 1.0, "seed": 5})
    shape = client.post(url).json()
    assert not isinstance(shape, list) or not all(isinstance(item, dict) for item in shape)
    sandbox.state.update_config({"rate_wrong_shape": 0.0, "rate_reset": 1.0})
    with pytest.raises(httpx2.RemoteProtocolError):
        client.post(url)
    assert sandbox.state.fault_counts() == {"truncated": 1, "wrong_shape": 1, "reset": 1}


def test_shuffle_and_duplicates_hit_flow_polls(sandbox: SandboxServer, client: httpx2.Client) -> None:
    sandbox.state.update_config({"shuffle": True, "duplicate_rate": 1.0, "seed": 3, "pacing": 0})
    session_id = open_flow(client, FAQ)
    invoke_cursor = int(str(flow_invoke(client, session_id, "events:30")["created_at"]))
    events = follow(client, session_id, has_answer)
    everything = [e for e in scheduled(client, session_id) if e["event_type"] != "human"]
    assert len(events) == len(everything) + 1 and len(everything) == 31
    batch = poll(client, session_id, invoke_cursor, base=FLOWS)
    assert any(stamp(e) <= invoke_cursor for e in batch)  # a duplicate of an event the cursor has passed
    fresh = [e["event_id"] for e in batch if stamp(e) > invoke_cursor]
    assert sorted(fresh) == sorted(e["event_id"] for e in everything) and fresh != [e["event_id"] for e in everything]


def test_session_calls_need_a_key_only_when_the_knob_asks(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = open_flow(client, ECHO)
    with httpx2.Client(base_url=sandbox.url) as anonymous:
        assert anonymous.post(f"{FLOWS}/{session_id}/invoke", json={"message": "hi"}).status_code == 200
        sandbox.state.update_config({"require_auth_on_session_calls": True})
        for path in ("invocation_response/0", "cancel", "resume-hook"):
            assert anonymous.post(f"{FLOWS}/{session_id}/{path}", json={}).status_code == 401
        assert anonymous.post(f"{FLOWS}/{session_id}/attachments", files={"file": ("a", b"a")}).status_code == 401
    assert client.post(f"{FLOWS}/{session_id}/cancel").status_code == 200


# --- the courses as pure functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow_id", "last_action"),
    [(FAQ, "message"), (SCHEDULER, "hook_waiting_for_input"), (EMAIL, "hitl_approval_requested"), (ECHO, "message")],
)
def test_each_course_ends_on_its_answer_or_its_waiting_event(flow_id: str, last_action: str) -> None:
    flow = next(flow for flow in DEFAULT_FLOWS if flow.id == flow_id)
    course = flow_turn(flow, "hello", "m" * 32, FlowInputs({"k": "v"}, ["a.txt"]))
    assert course[-1].action_type == last_action
    assert [event.offset_ms for event in course] == sorted(event.offset_ms for event in course)
