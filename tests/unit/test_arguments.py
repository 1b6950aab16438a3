"""arguments.py: a bad tool argument becomes an InvalidArgumentError that says what to send instead."""

from __future__ import annotations

import math

import pytest

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.wire import AI_MODELS
from flow_mcp.server.arguments import MAX_MESSAGE_BYTES, check_ai_model, check_message, check_seconds


@pytest.mark.parametrize("message", ["hi", "Grüße 🚀", "x" * MAX_MESSAGE_BYTES, "é" * (MAX_MESSAGE_BYTES // 2)])
def test_a_message_up_to_64_kib_of_utf8_passes_unchanged(message: str) -> None:
    assert check_message(message) == message


@pytest.mark.parametrize(
    "message", ["", "   ", "\n\t", "x" * (MAX_MESSAGE_BYTES + 1), "é" * (MAX_MESSAGE_BYTES // 2 + 1), "a\ud800b"]
)
def test_a_blank_oversized_or_unencodable_message_is_refused(message: str) -> None:
    with pytest.raises(InvalidArgumentError):
        check_message(message)


@pytest.mark.parametrize(("given", "model"), [("gpt4.1", "GPT4.1"), (" o3  MINI ", "O3 Mini"), ("O4 Mini", "O4 Mini")])
def test_a_model_name_matches_ignoring_case_and_spacing_and_comes_back_as_flowhunt_spells_it(
    given: str, model: str
) -> None:
    assert check_ai_model(given) == model


def test_no_model_means_flowhunts_default() -> None:
    assert check_ai_model(None) is None


def test_an_unknown_model_is_refused_with_the_names_to_choose_from() -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        check_ai_model("GPT-9")
    assert all(name in str(refused.value) for name in AI_MODELS)


@pytest.mark.parametrize("seconds", [0, 0.5, 45])
def test_seconds_within_the_bounds_pass_as_floats(seconds: float) -> None:
    assert check_seconds("wait_seconds", seconds, low=0, high=45) == float(seconds)


@pytest.mark.parametrize("seconds", [-0.1, 45.01, math.inf, -math.inf, math.nan])
def test_seconds_out_of_bounds_or_not_finite_are_refused_naming_the_argument(seconds: float) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        check_seconds("wait_seconds", seconds, low=0, high=45)
    assert "wait_seconds" in str(refused.value)
