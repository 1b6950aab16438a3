"""The FlowHunt simulator, exercised over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx2
import pytest

from flow_mcp.sandbox import SandboxConfig, SandboxServer

KEY = "fh-sandbox-key"
WORKSPACE = "ws-sandbox"
Event = dict[str, object]


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as http:
        yield http


def create(client: httpx2.Client, **body: object) -> str:
    response = client.post("/v3/flow-assistants/create", params={"workspace_id": WORKSPACE}, json=body or None)
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


def invoke(client: httpx2.Client, session_id: str, message: str) -> dict[str, object]:
    response = client.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": message})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


ASSISTANTS = "/v3/flow-assistants"


def poll(client: httpx2.Client, session_id: str, cursor: int | str, base: str = ASSISTANTS) -> list[Event]:
    response = client.post(f"{base}/{session_id}/invocation_response/{cursor}")
    assert response.status_code == 200, response.text
    events: list[Event] = response.json()
    return events


def collect_until(
    client: httpx2.Client,
    session_id: str,
    cursor: int,
    done: Callable[[list[Event]], bool],
    deadline_s: float = 10,
    base: str = ASSISTANTS,
) -> list[Event]:
    """Poll like a careful client (cursor = a batch's greatest timestamp, de-duplicated) until `done`."""
    seen: dict[str, Event] = {}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        batch = poll(client, session_id, cursor, base)
        for event in batch:
            seen.setdefault(str(event["event_id"]), event)
        if batch:
            cursor = max(cursor, *(int(str(event["created_at_timestamp"])) for event in batch))
        events = sorted(seen.values(), key=lambda event: int(str(event["created_at_timestamp"])))
        if done(events):
            return events
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {deadline_s}s; saw {[e['action_type'] for e in seen.values()]}")


def has_answer(events: list[Event]) -> bool:
    return any(e["event_type"] == "ai" and e["action_type"] == "message" for e in events)


def has_action(action_type: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(e["action_type"] == action_type for e in events)


def scheduled(client: httpx2.Client, session_id: str) -> list[Event]:
    response = client.get(f"/_sandbox/sessions/{session_id}/events")
    assert response.status_code == 200
    events: list[Event] = response.json()
    return events


def stamp(event: Event) -> int:
    return int(str(event["created_at_timestamp"]))


# --- auth -----------------------------------------------------------------------------------------


def test_auth_me_accepts_the_key_as_bearer_token_or_api_key_header(sandbox: SandboxServer) -> None:
    with httpx2.Client(base_url=sandbox.url) as http:
        bearer = http.get("/v2/auth/me", headers={"Authorization": f"Bearer {KEY}"})
        api_key = http.get("/v2/auth/me", headers={"Api-Key": KEY})
    assert bearer.status_code == api_key.status_code == 200
    assert bearer.json()["api_key_workspace_id"] == WORKSPACE
    assert set(bearer.json()) >= {"id", "email", "username", "api_key_workspace_id"}


def test_missing_or_wrong_key_is_401_and_the_key_is_never_echoed(sandbox: SandboxServer) -> None:
    with httpx2.Client(base_url=sandbox.url) as http:
        missing = http.get("/v2/auth/me")
        wrong = http.post(
            "/v3/flow-assistants/create", params={"workspace_id": WORKSPACE}, headers={"Api-Key": "fh-guess-123"}
        )
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json() == {"detail": "Invalid API key"}
    assert "fh-guess-123" not in wrong.text


def test_invoke_and_poll_need_no_key_unless_the_knob_asks_for_one(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = create(client)
    with httpx2.Client(base_url=sandbox.url) as anonymous:
        assert anonymous.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hi"}).status_code == 200
        sandbox.state.update_config({"require_auth_on_session_calls": True})
        assert anonymous.post(f"/v3/flow-assistants/{session_id}/invocation_response/0").status_code == 401
    assert poll(client, session_id, 0)


# --- create ---------------------------------------------------------------------------------------


def test_create_answers_201_with_a_session_id_and_a_timezone_aware_datetime(client: httpx2.Client) -> None:
    response = client.post("/v3/flow-assistants/create", params={"workspace_id": WORKSPACE})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session_id", "created_at"} and body["session_id"]
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


def test_create_without_workspace_id_is_a_fastapi_422(client: httpx2.Client) -> None:
    response = client.post("/v3/flow-assistants/create", json={})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"type": "missing", "loc": ["query", "workspace_id"], "msg": "Field required", "input": None}]
    }


def test_create_in_a_foreign_workspace_is_403(client: httpx2.Client) -> None:
    response = client.post("/v3/flow-assistants/create", params={"workspace_id": "ws-other"})
    assert response.status_code == 403
    assert isinstance(response.json()["detail"], str)


def test_create_with_wrong_body_types_is_422_naming_each_field(client: httpx2.Client) -> None:
    body = {"context_flow_id": 5, "start_with_welcome_message": "perhaps"}
    response = client.post("/v3/flow-assistants/create", params={"workspace_id": WORKSPACE}, json=body)
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert locs == [["body", "context_flow_id"], ["body", "start_with_welcome_message"]]


def test_a_welcome_message_arrives_when_asked_for(client: httpx2.Client) -> None:
    session_id = create(client, start_with_welcome_message=True)
    events = collect_until(client, session_id, 0, has_answer)
    assert [e["action_type"] for e in events] == ["message"]


# --- invoke and poll ------------------------------------------------------------------------------


def test_a_default_turn_ends_with_an_answer_quoting_the_message(client: httpx2.Client) -> None:
    session_id = create(client)
    message = "Build a chatbot 🤖 for Zürich"
    invocation = invoke(client, session_id, message)
    assert invocation["cached_events"] == []
    created_at = int(str(invocation["created_at"]))
    events = collect_until(client, session_id, 0, has_answer)
    human, *assistant = events
    assert human["event_type"] == "human" and stamp(human) == created_at
    assert human["metadata"] == {"message_id": invocation["message_id"], "message": message}
    assert all(stamp(event) > created_at for event in assistant)
    kinds = [event["action_type"] for event in assistant]
    assert kinds[:4] == ["v3_flow_assistant_init"] * 3 + ["agent_initialized"]
    for expected in ("loading", "v3_tool_call_start", "v3_tool_call_end", "add_component", "add_connection"):
        assert expected in kinds
    answer = assistant[-1]
    assert answer["action_type"] == "message" and message in str(answer["metadata"]["message"])  # type: ignore[index]
    assert any(float(str(event["credits"])) > 0 for event in assistant)
    assert {"workspace_id", "session_id", "event_id", "event_type", "created_at_timestamp", "run_id"} <= set(answer)


def test_a_default_turn_has_events_sharing_one_millisecond(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "hello")
    stamps = [stamp(event) for event in scheduled(client, session_id)]
    assert len(stamps) > len(set(stamps))


def test_a_careful_client_sees_every_event_exactly_once_with_an_exclusive_cursor(client: httpx2.Client) -> None:
    session_id = create(client)
    cursor = int(str(invoke(client, session_id, "events:60")["created_at"]))
    events = collect_until(client, session_id, cursor, has_answer)
    expected = [e for e in scheduled(client, session_id) if e["event_type"] != "human"]
    assert sorted(str(e["event_id"]) for e in events) == sorted(str(e["event_id"]) for e in expected)


def test_the_exclusive_cursor_skips_its_own_millisecond_and_the_inclusive_one_keeps_it(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = create(client)
    created_at = int(str(invoke(client, session_id, "hello")["created_at"]))
    exclusive = poll(client, session_id, created_at)
    assert all(stamp(event) > created_at for event in exclusive)
    sandbox.state.update_config({"inclusive_cursor": True})
    inclusive = poll(client, session_id, created_at)
    assert [e["event_type"] for e in inclusive if stamp(e) == created_at] == ["human"]


def test_a_second_invoke_during_a_turn_is_accepted_and_recorded_as_overlapping(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "slow tool please")
    invoke(client, session_id, "and another thing")
    invocations = client.get(f"/_sandbox/sessions/{session_id}/invocations").json()
    assert [i["overlapped_previous_turn"] for i in invocations] == [False, True]


def test_invoke_validation_errors_use_fastapi_types_and_locations(client: httpx2.Client) -> None:
    session_id = create(client)
    url = f"/v3/flow-assistants/{session_id}/invoke"
    cases: list[tuple[dict[str, object], str, list[object]]] = [
        ({"json": {}}, "missing", ["body", "message"]),
        ({"json": {"message": 7}}, "string_type", ["body", "message"]),
        ({"json": {"message": "hi", "ai_model": "GPT5"}}, "literal_error", ["body", "ai_model"]),
        ({"content": b'{"message": '}, "json_invalid", ["body", 12]),
    ]
    for kwargs, error_type, loc in cases:
        response = client.post(url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert (error["type"], error["loc"]) == (error_type, loc)
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []


def test_unknown_sessions_are_404_for_invoke_and_poll(client: httpx2.Client) -> None:
    assert client.post("/v3/flow-assistants/nope/invoke", json={"message": "hi"}).status_code == 404
    response = client.post("/v3/flow-assistants/nope/invocation_response/0")
    assert response.status_code == 404 and response.json() == {"detail": "Session not found"}


def test_a_non_digit_cursor_is_422_at_the_path_parameter(client: httpx2.Client) -> None:
    session_id = create(client)
    for cursor in ("abc", "-1", "12.5"):
        response = client.post(f"/v3/flow-assistants/{session_id}/invocation_response/{cursor}")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "from_timestamp"]


def test_unknown_routes_are_404_and_wrong_methods_405(client: httpx2.Client) -> None:
    assert client.get("/v3/nothing").json() == {"detail": "Not Found"}
    wrong = client.get("/v3/flow-assistants/create")
    assert wrong.status_code == 405 and wrong.json() == {"detail": "Method Not Allowed"}


def test_the_request_log_keeps_raw_paths_and_statuses(sandbox: SandboxServer, client: httpx2.Client) -> None:
    client.post("/v3/flow-assistants/a%2Fb/invoke", json={"message": "hi"})
    log = client.get("/_sandbox/requests").json()
    assert {k: v for k, v in log[-1].items() if k != "at_ms"} == {
        "method": "POST",
        "path": "/v3/flow-assistants/a%2Fb/invoke",
        "query": "",
        "kind": None,  # the decoded path has one segment too many: no route, so no call kind
        "status": 404,
    }
    assert isinstance(log[-1]["at_ms"], int)
    assert sandbox.state.request_log() == log


# --- fault knobs ----------------------------------------------------------------------------------


def test_shuffle_returns_a_batch_out_of_time_order(sandbox: SandboxServer, client: httpx2.Client) -> None:
    sandbox.state.update_config({"shuffle": True, "seed": 3, "pacing": 0})
    session_id = create(client)
    invoke(client, session_id, "events:40")
    events = collect_until(client, session_id, 0, has_answer)
    batch = poll(client, session_id, 0)
    assert {e["event_id"] for e in batch} == {e["event_id"] for e in events}
    assert [e["event_id"] for e in batch] != [e["event_id"] for e in events]


def test_duplicates_resend_events_the_client_has_already_seen(sandbox: SandboxServer, client: httpx2.Client) -> None:
    sandbox.state.update_config({"duplicate_rate": 1.0, "seed": 1, "pacing": 0})
    session_id = create(client)
    cursor = int(str(invoke(client, session_id, "hello")["created_at"]))
    collect_until(client, session_id, cursor, has_answer)
    last = max(stamp(event) for event in scheduled(client, session_id))
    repeated = poll(client, session_id, last)
    assert 1 <= len(repeated) <= 3 and all(stamp(event) <= last for event in repeated)


def test_429_carries_retry_after_in_either_form_and_changes_nothing(
    sandbox: SandboxServer, client: httpx2.Client
) -> None:
    session_id = create(client)
    sandbox.state.update_config({"rate_429": 1.0, "seed": 7, "retry_after_s": 2})
    forms = set()
    for _ in range(12):
        response = client.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hi"})
        assert response.status_code == 429
        retry_after = response.headers["retry-after"]
        if retry_after.isdigit():
            forms.add("seconds")
            assert retry_after == "2"
        else:
            forms.add("date")
            assert parsedate_to_datetime(retry_after).tzinfo is not None
    assert forms == {"seconds", "date"}
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []
    assert client.get("/_sandbox/faults").json() == {"429": 12}
    assert client.get("/v2/auth/me").status_code == 200


def test_503_is_answered_before_the_invoke_is_processed(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = create(client)
    sandbox.state.update_config({"rate_503": 1.0})
    assert client.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hi"}).status_code == 503
    assert client.get(f"/_sandbox/sessions/{session_id}/invocations").json() == []


def test_500_on_invoke_comes_after_the_turn_started(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = create(client)
    sandbox.state.update_config({"rate_500": 1.0})
    assert client.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hi"}).status_code == 500
    sandbox.state.update_config({"rate_500": 0.0})
    (invocation,) = client.get(f"/_sandbox/sessions/{session_id}/invocations").json()
    assert invocation["fault"] == "500"
    assert collect_until(client, session_id, 0, has_answer)


def test_truncated_bodies_are_not_json_and_wrong_shapes_are(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "hello")
    sandbox.state.update_config({"rate_truncated": 1.0})
    truncated = client.post(f"/v3/flow-assistants/{session_id}/invocation_response/0")
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    sandbox.state.update_config({"rate_truncated": 0.0, "rate_wrong_shape": 1.0, "seed": 5})
    shapes = [client.post(f"/v3/flow-assistants/{session_id}/invocation_response/0").json() for _ in range(8)]
    assert all(not isinstance(shape, list) or not all(isinstance(x, dict) for x in shape) for shape in shapes)
    assert client.get("/_sandbox/faults").json() == {"truncated": 1, "wrong_shape": 8}


def test_a_reset_breaks_the_connection_mid_response(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = create(client)
    sandbox.state.update_config({"rate_reset": 1.0})
    with pytest.raises(httpx2.RemoteProtocolError):
        client.post(f"/v3/flow-assistants/{session_id}/invocation_response/0")
    assert sandbox.state.fault_counts() == {"reset": 1}


def test_a_stall_outlasts_the_client_timeout(sandbox: SandboxServer, client: httpx2.Client) -> None:
    session_id = create(client)
    sandbox.state.update_config({"rate_stall": 1.0, "stall_s": 3})
    with pytest.raises(httpx2.ReadTimeout):
        client.post(f"/v3/flow-assistants/{session_id}/invocation_response/0", timeout=0.3)


def test_the_same_seed_injects_the_same_faults() -> None:
    def statuses() -> list[int]:
        config = SandboxConfig(pacing=0, seed=42, rate_429=0.3, rate_503=0.2)
        with SandboxServer(config) as server, httpx2.Client(base_url=server.url) as http:
            return [http.post("/v3/flow-assistants/x/invocation_response/0").status_code for _ in range(20)]

    first = statuses()
    assert first == statuses() and {404, 429, 503} <= set(first)


def test_knobs_change_at_runtime_and_unknown_knobs_are_refused(sandbox: SandboxServer, client: httpx2.Client) -> None:
    assert client.post("/_sandbox/config", json={"shuffle": True, "latency_ms": 5}).json()["shuffle"] is True
    assert sandbox.config.latency_ms == 5
    assert client.post("/_sandbox/config", json={"warp_speed": 9}).status_code == 422
    assert client.post("/_sandbox/config", json={"rate_500": 2}).status_code == 422
    assert client.get("/_sandbox/config").json()["api_key"] != KEY
    assert client.post("/_sandbox/reset").status_code == 200 and sandbox.state.request_log() == []


# --- scripted courses -----------------------------------------------------------------------------


def test_fail_ends_the_turn_with_a_failed_system_event_and_no_answer(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "please FAIL now")
    events = collect_until(client, session_id, 0, has_action("failed"))
    failed = events[-1]
    assert failed["event_type"] == "system" and "could not complete" in str(failed["metadata"])
    assert not has_answer(scheduled(client, session_id))


def test_hook_waits_for_input_without_an_answer(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "use a hook")
    events = collect_until(client, session_id, 0, has_action("hook_waiting_for_input"))
    assert set(events[-1]["metadata"]) == {"hook_id", "hook_name", "prompt_message"}  # type: ignore[arg-type]
    assert not has_answer(scheduled(client, session_id))


def test_a_long_turn_lasts_about_a_minute_at_normal_pacing() -> None:
    with SandboxServer(SandboxConfig(pacing=1.0)) as server, httpx2.Client(base_url=server.url) as http:
        http.headers["Api-Key"] = KEY
        session_id = create(http)
        created_at = int(str(invoke(http, session_id, "a long one")["created_at"]))
        events = scheduled(http, session_id)
    answer = events[-1]
    assert answer["action_type"] == "message" and answer["visible"] is False
    assert 50_000 <= stamp(answer) - created_at <= 70_000
    starts = {e["metadata"]["agent_query"]: stamp(e) for e in events if e["action_type"] == "v3_tool_call_start"}  # type: ignore[index]
    ends = {e["metadata"]["agent_query"]: stamp(e) for e in events if e["action_type"] == "v3_tool_call_end"}  # type: ignore[index]
    assert all(5_000 <= ends[query] - starts[query] <= 20_000 for query in starts)


@pytest.mark.parametrize("count", [0, 3, 200])
def test_events_n_puts_exactly_n_events_before_the_answer(client: httpx2.Client, count: int) -> None:
    session_id = create(client)
    invoke(client, session_id, f"events:{count}")
    events = collect_until(client, session_id, 0, has_answer)
    assert [e["action_type"] for e in events[1:]].index("message") == count
    invoke(client, session_id, f"again events:{count}")
    second = [e for e in scheduled(client, session_id)[len(events) :] if e["event_type"] != "human"]
    assert len(second) == count + 1


def test_unknown_sends_types_and_shapes_no_sdk_knows(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "something unknown")
    events = collect_until(client, session_id, 0, has_answer)
    assert "quantum_leap" in {e["action_type"] for e in events}
    assert "observer" in {e["event_type"] for e in events}
    assert {type(e["metadata"]) for e in events} >= {dict, list, str}


def test_close_session_answers_then_closes_and_refuses_further_invokes(client: httpx2.Client) -> None:
    session_id = create(client)
    invoke(client, session_id, "close session please")
    events = collect_until(client, session_id, 0, has_action("session_closed"))
    assert has_answer(events)
    assert client.post(f"/v3/flow-assistants/{session_id}/invoke", json={"message": "hi"}).status_code == 404


# --- running it -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_server_also_works_as_an_async_context_manager() -> None:
    async with SandboxServer(SandboxConfig(pacing=0)) as server, httpx2.AsyncClient(base_url=server.url) as http:
        response = await http.get("/v2/auth/me", headers={"Api-Key": KEY})
    assert response.status_code == 200
