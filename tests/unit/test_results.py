"""results.py: each result's text puts the answer first and says what to call next; error texts say how to resume."""

from __future__ import annotations

from typing import Any

import pytest

from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowMCPError,
    InvalidArgumentError,
    NotDeliveredError,
    NotFoundError,
    RateLimitError,
    ResponseShapeError,
    ServerError,
    TransportError,
    ValidationError,
)
from flow_mcp.flowhunt.digest import FlowAction, ToolCall
from flow_mcp.flowhunt.events import Event
from flow_mcp.flowhunt.turn import WaitingFor
from flow_mcp.server.results import (
    AskResult,
    CreateSessionResult,
    InvokeResult,
    PollResult,
    ask_text,
    continue_hint,
    create_session_text,
    describe,
    invoke_text,
    poll_text,
)

SID, CURSOR = "sess-1", "c1.abc"
RESUME = continue_hint(SID, CURSOR)


def ask_result(**fields: Any) -> AskResult:
    values: dict[str, Any] = {
        "session_id": SID,
        "message_id": "m1",
        "status": "completed",
        "answer": "Here is your bot.",
        "messages": ["Let me look.", "Here is your bot."],
        "tool_calls": [ToolCall(name="search_docs")],
        "actions": [FlowAction(type="add_component", summary="Added component Chat Input")],
        "credits": 1.5,
        "events_count": 9,
        "cursor": CURSOR,
    }
    return AskResult(**{**values, **fields})


def event(summary: str) -> Event:
    return Event(event_id="e", type="loading", role="ai", at=1, summary=summary, credits=0.0)


# -- texts -----------------------------------------------------------------------------------------


def test_a_completed_ask_starts_with_the_answer_and_says_how_to_continue_the_conversation() -> None:
    text = ask_text(ask_result())
    assert text.startswith("Here is your bot.\n")
    assert "search_docs" in text and "Added component Chat Input" in text
    assert f'ask(message=..., session_id="{SID}")' in text and "poll_events" not in text


def test_a_running_ask_says_to_go_on_with_poll_events_and_its_cursor() -> None:
    text = ask_text(ask_result(status="running", answer=None, messages=[]))
    assert text.startswith("Status: running") and RESUME in text


def test_a_failed_ask_says_why() -> None:
    text = ask_text(ask_result(status="failed", answer=None, error="the flow could not be validated"))
    assert "the flow could not be validated" in text and RESUME not in text


def test_a_waiting_ask_says_what_it_waits_for_with_the_link() -> None:
    waiting = WaitingFor(kind="integration_missing", prompt="Connect Google Sheets", link="https://x.example/i")
    text = ask_text(ask_result(status="waiting_for_input", answer=None, waiting_for=waiting))
    assert "integration_missing" in text and "Connect Google Sheets" in text and "https://x.example/i" in text


def test_a_closed_session_says_to_start_a_new_one() -> None:
    assert "create_session" in ask_text(ask_result(status="session_closed"))


def test_a_poll_starts_with_its_answer_and_lists_its_events() -> None:
    result = PollResult(session_id=SID, events=[event("Answer ready")], cursor=CURSOR, status="completed", answer="Hi")
    text = poll_text(result)
    assert text.startswith("Hi\n") and "- Answer ready" in text and "poll_events" not in text


def test_a_running_poll_says_to_poll_again_and_a_full_one_to_poll_at_once() -> None:
    running = PollResult(session_id=SID, events=[], cursor=CURSOR, status="running")
    assert RESUME in poll_text(running)
    full = PollResult(session_id=SID, events=[event("Thinking")], cursor=CURSOR, status="running", more=True)
    assert continue_hint(SID, CURSOR, 0) in poll_text(full)


def test_invoke_and_create_session_say_what_to_call_next() -> None:
    invoked = InvokeResult(session_id=SID, message_id="m1", created_at="1", cursor=CURSOR, events=[event("Working")])
    assert RESUME in invoke_text(invoked) and "- Working" in invoke_text(invoked)
    created = CreateSessionResult(session_id=SID, created_at="1", workspace_id="ws")
    assert f'session_id="{SID}"' in create_session_text(created)


# -- error texts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (NotFoundError(404, "gone"), "create_session"),
        (AuthError(401, "bad key"), "FLOWHUNT_API_KEY"),
        (RateLimitError(429, "slow down", retry_after=7), "Retry in 7 s"),
        (RateLimitError(429, "slow down"), "Retry in a minute"),
        (ValidationError(422, "ai_model: bad"), "ai_model: bad"),
        (ServerError(502, "bad gateway"), "502"),
        (TransportError("FlowHunt could not be reached.", request_sent=False), "FLOWHUNT_BASE_URL"),
        (ResponseShapeError("FlowHunt answered nonsense."), "Retry"),
    ],
)
def test_each_error_says_what_to_do(error: FlowMCPError, says: str) -> None:
    assert says in describe(error)


@pytest.mark.parametrize(
    "error", [InvalidArgumentError("cursor is malformed"), ConfigurationError("set FLOWHUNT_API_KEY")]
)
def test_an_argument_or_configuration_error_is_told_as_it_is_with_no_resume_hint(error: FlowMCPError) -> None:
    assert describe(error, session_id=SID, cursor=CURSOR) == str(error)


def test_an_unknown_session_names_it_and_never_offers_to_resume_it() -> None:
    text = describe(NotFoundError(404, "gone"), session_id=SID, cursor=CURSOR)
    assert f"'{SID}'" in text and "poll_events" not in text


def test_a_failure_while_a_turn_runs_says_how_to_resume_it_with_its_cursor() -> None:
    text = describe(ServerError(500, ""), session_id=SID, cursor=CURSOR, invoking=True)
    assert f'poll_events(session_id="{SID}", cursor="{CURSOR}"' in text


@pytest.mark.parametrize(
    "error", [ServerError(500, ""), TransportError("timed out", request_sent=True), ResponseShapeError("garbled")]
)
def test_an_invoke_that_may_have_arrived_says_to_check_the_session_before_sending_again(error: FlowMCPError) -> None:
    text = describe(error, session_id=SID, invoking=True)
    assert f'poll_events(session_id="{SID}", cursor="0")' in text and "safe" not in text


@pytest.mark.parametrize(
    "error", [ServerError(503, ""), RateLimitError(429, ""), TransportError("no connect", request_sent=False)]
)
def test_an_invoke_refused_before_flowhunt_took_it_says_sending_again_is_safe(error: FlowMCPError) -> None:
    text = describe(error, session_id=SID, invoking=True)
    assert "sending it again is safe" in text and 'cursor="0"' not in text


def test_a_message_looked_for_and_not_found_is_told_once_as_safe_to_send_again() -> None:
    error = NotDeliveredError("FlowHunt answered 500. The message is not in the session: sending it again is safe.")
    assert describe(error, session_id=SID, invoking=True).count("safe") == 1


def test_a_rejected_key_of_the_callers_own_names_the_header_it_came_in() -> None:
    text = describe(AuthError(401, "bad key"), session_id=SID, key_header="X-FlowHunt-Api-Key")
    assert "X-FlowHunt-Api-Key" in text and "FLOWHUNT_API_KEY" not in text
