"""The sandbox's pure parts: its knobs from the environment, its scripted courses, its state in process."""

from __future__ import annotations

import pytest

from flow_mcp.sandbox import SandboxConfig, SandboxState, script_turn


def test_knobs_are_read_from_the_environment() -> None:
    env = {"FLOWHUNT_SANDBOX_PACING": "0.5", "FLOWHUNT_SANDBOX_SHUFFLE": "true", "FLOWHUNT_SANDBOX_SEED": "9"}
    config = SandboxConfig.from_env({**env, "FLOWHUNT_SANDBOX_RATE_429": "0.25", "FLOWHUNT_SANDBOX_API_KEY": "k"})
    assert (config.pacing, config.shuffle, config.seed, config.rate_429, config.api_key) == (0.5, True, 9, 0.25, "k")
    with pytest.raises(ValueError):
        SandboxConfig.from_env({"FLOWHUNT_SANDBOX_SHUFFLE": "maybe"})


@pytest.mark.parametrize(
    ("message", "action_type", "fields"),
    [
        ("needs approval", "hitl_approval_requested", {"hook_id", "hitl_id", "tool_name", "tool_args"}),
        ("an integration", "integration_missing", {"slug", "integration_url"}),
        ("file access", "file_access_required", {"document_id", "document_type"}),
    ],
)
def test_waiting_courses_end_on_their_waiting_event(message: str, action_type: str, fields: set[str]) -> None:
    course = script_turn(message, "m" * 32, first_turn=False)
    assert course[-1].action_type == action_type and fields <= set(course[-1].metadata)
    assert all(event.action_type != "message" for event in course)


def test_multi_answers_twice_and_slow_tool_answers_after_its_tool_ends() -> None:
    multi = script_turn("multi please", "m" * 32, first_turn=False)
    assert [e.event_type for e in multi if e.action_type == "message"] == ["ai", "ai"]
    slow = script_turn("a slow tool", "m" * 32, first_turn=False)
    end = next(e for e in slow if e.action_type == "v3_tool_call_end")
    start = next(e for e in slow if e.action_type == "v3_tool_call_start")
    assert end.offset_ms - start.offset_ms >= 4000 and slow[-1].offset_ms > end.offset_ms


def test_trigger_words_match_whole_words_only() -> None:
    course = script_turn("it does belong here", "m" * 32, first_turn=False)
    assert course[-1].offset_ms < 5000 and course[-1].action_type == "message"


def test_state_records_are_reachable_in_process() -> None:
    state = SandboxState(SandboxConfig(pacing=0))
    session = state.create_session(None, welcome=False)
    invocation = state.invoke(session, "hello", None, None)
    assert [i["message_id"] for i in state.session_invocations(session)] == [invocation.message_id]
    assert state.session_events(session)[0]["event_type"] == "human"


def test_a_timeline_message_scripts_its_own_course_without_a_prelude() -> None:
    message = "timeline: start+150:lookup end+2000:lookup edit+150 note+0 load+5:x bogus+9 answer+400"
    course = script_turn(message, "m" * 32, first_turn=True)
    kinds = [event.action_type for event in course]
    assert kinds == ["v3_tool_call_start", "v3_tool_call_end", "update_component", "agent_cot", "loading", "message"]
    assert [event.offset_ms for event in course] == [150, 2150, 2300, 2300, 2305, 2705]
    assert course[1].metadata["duration_ms"] == 2000  # type: ignore[index]
