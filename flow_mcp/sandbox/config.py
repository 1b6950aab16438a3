"""Knobs of the FlowHunt simulator: one mutable dataclass, readable from the environment and changeable at runtime."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_type_hints

from flow_mcp.sandbox.flows import parse_flows

ENV_PREFIX = "FLOWHUNT_SANDBOX_"

# Every API call the sandbox answers, by name: the request log's `kind`, and the words `out_of_credits` takes.
CALL_KINDS = (
    "auth_me",
    "assistant_create",
    "assistant_invoke",
    "assistant_poll",
    "flow_list",
    "flow_get",
    "flow_session_create",
    "flow_invoke",
    "flow_poll",
    "flow_attach",
    "flow_resume_hook",
    "flow_cancel",
)
# `out_of_credits: all` covers every call but who-am-I: identifying a key costs no credits.
CREDIT_KINDS = CALL_KINDS[1:]
ASSISTANT_RESUME = ("accept", "404", "405", "422")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass
class SandboxConfig:
    """Everything the sandbox can be told. Mutable on purpose: tests flip faults on a running server."""

    api_key: str = "fh-sandbox-key"
    workspace_id: str = "ws-sandbox"
    # More API keys, each of its own workspace: "key=workspace" pairs separated by commas.
    team_keys: str = ""
    # Real FlowHunt declares no auth on invoke/poll (the session id is the capability); mirror that by default.
    require_auth_on_session_calls: bool = False
    # Multiplies every scripted delay; 0 collapses a turn into (almost) one millisecond.
    pacing: float = 1.0
    inclusive_cursor: bool = False
    shuffle: bool = False
    duplicate_rate: float = 0.0
    latency_ms: float = 0.0
    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_reset: float = 0.0
    rate_stall: float = 0.0
    stall_s: float = 30.0
    rate_truncated: float = 0.0
    rate_wrong_shape: float = 0.0
    # A hostile FlowHunt. Poison: a lone surrogate (the JSON escape \ud800) or invalid UTF-8 after every text a
    # person reads (messages, details; a person's own message is left alone, flow_mcp finds a sent message by it).
    rate_surrogate: float = 0.0
    rate_bad_utf8: float = 0.0
    # The answer followed by oversized_bytes of JSON whitespace, streamed; half the time as a gzip bomb.
    rate_oversized: float = 0.0
    oversized_bytes: float = 64 * 1024 * 1024
    # The answer dripped over drip_s seconds in small pieces: every read is quick, the whole is not.
    rate_drip: float = 0.0
    drip_s: float = 10.0
    # A 429's Retry-After is one of an hour, a day, 1e400, a date in year 9999, a negative number or garbage.
    hostile_retry_after: bool = False
    seed: int | None = None
    # Limit faults to paths containing this text (e.g. "/invoke"); empty: every /v3 and /v2/flows path.
    fault_only: str = ""
    # Answer 402 (out of credits) to these calls: CALL_KINDS names separated by commas, or "all".
    out_of_credits: str = ""
    # The published flows (V2): a JSON list of flow objects (see flows.py); empty: flows.DEFAULT_FLOWS.
    flows: str = ""
    # resume-hook on a Flow Assistant (V3) session id: "accept", or refuse it with 404, 405 or 422.
    assistant_resume: str = "accept"
    # Largest attachment accepted (bytes); a bigger one is answered 413. null: no limit.
    max_attachment_bytes: int | None = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        """Build a config from `FLOWHUNT_SANDBOX_<KNOB>` variables; unset knobs keep their defaults."""
        env = os.environ if environ is None else environ
        changes: dict[str, object] = {}
        for name in knob_names():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                changes[name] = _from_text(name, raw.strip())
        config = cls()
        config.update(changes)
        return config

    def update(self, changes: Mapping[str, object]) -> None:
        """Apply a partial set of knobs; validates all of them before changing any, raising ValueError."""
        checked = {name: _checked(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def out_of_credits_for(self, kind: str) -> bool:
        """True when calls of this kind are to be answered 402."""
        chosen = _words(self.out_of_credits)
        return kind in chosen or ("all" in chosen and kind in CREDIT_KINDS)

    def workspaces_by_key(self) -> dict[str, str]:
        """Every API key the sandbox accepts, with the workspace it belongs to."""
        pairs = (pair.partition("=") for pair in self.team_keys.split(",") if pair.strip())
        return {self.api_key: self.workspace_id} | {key.strip(): ws.strip() for key, _, ws in pairs}

    def public_dict(self) -> dict[str, object]:
        """The knobs as JSON-ready data, with the API key withheld."""
        data = dataclasses.asdict(self)
        data["api_key"] = "***"
        data["team_keys"] = "***" if self.team_keys else ""
        return data


def knob_names() -> tuple[str, ...]:
    """Names of every knob, in declaration order."""
    return tuple(field.name for field in dataclasses.fields(SandboxConfig))


def _kinds() -> dict[str, object]:
    return dict(get_type_hints(SandboxConfig))


def _from_text(name: str, raw: str) -> object:
    kind = _kinds().get(name)
    if kind is bool:
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()}: expected a boolean, got {raw!r}")
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()}: expected a number, got {raw!r}") from None
    if kind == int | None:
        if raw.lower() in {"", "none", "null"}:
            return None
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()}: expected an integer, got {raw!r}") from None
    return raw


def _checked(name: str, value: object) -> object:
    kinds = _kinds()
    if name not in kinds:
        raise ValueError(f"unknown sandbox knob {name!r}")
    kind = kinds[name]
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected a boolean")
        return value
    if kind is float:
        # bool is an int subclass; True as a rate is a mistake, not 1.0.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name}: expected a number")
        number = float(value)
        if number != number or number < 0:
            raise ValueError(f"{name}: expected a number >= 0")
        if "rate" in name and number > 1:
            raise ValueError(f"{name}: a rate is a probability between 0 and 1")
        return number
    if kind == int | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name}: expected an integer or null")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string")
    check = _TEXT_CHECKS.get(name)
    if check is not None:
        check(value)
    return value


def _words(text: str) -> set[str]:
    return {word.strip() for word in text.split(",") if word.strip()}


def _check_kinds(text: str) -> None:
    unknown = _words(text) - {*CALL_KINDS, "all"}
    if unknown:
        raise ValueError(f"out_of_credits: unknown call kinds {sorted(unknown)}; known: all, {', '.join(CALL_KINDS)}")


def _check_assistant_resume(text: str) -> None:
    if text not in ASSISTANT_RESUME:
        raise ValueError(f"assistant_resume: expected one of {', '.join(ASSISTANT_RESUME)}")


_TEXT_CHECKS = {"out_of_credits": _check_kinds, "flows": parse_flows, "assistant_resume": _check_assistant_resume}
