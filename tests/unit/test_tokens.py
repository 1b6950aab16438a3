"""Bearer tokens (tokens.py) and session handles (handles.py): the pure parts of serving a team."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flow_mcp.errors import ConfigurationError, InvalidArgumentError, NotFoundError
from flow_mcp.server.arguments import HANDLE_PATTERN
from flow_mcp.server.callers import SessionHandles, SessionRef, handle_key
from flow_mcp.server.http import SINGLE_TOKEN_NAME, TokenTable

ALICE = "alice-token-7f3a9c2e5b1d4f60"
BOB = "bob-token-0c8e6a4f2d9b7e51"
SESSION = "0b7c3e9a-5d1f-4a2b-9c8e-6f4d2a1b3c5e"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    return path


def test_a_tokens_file_names_each_client_and_may_store_only_hashes(tmp_path: Path) -> None:
    digest = hashlib.sha256(BOB.encode()).hexdigest()
    table = TokenTable.load(tokens_file=write(tmp_path, f"# team\n\nalice:{ALICE}\n bob : sha256:{digest}\n"))
    assert table.identify(ALICE) == "alice"
    assert table.identify(BOB) == "bob"
    assert table.identify(f"sha256:{digest}") is None  # the stored hash is not itself a token
    assert table.identify(ALICE[:-1]) is None
    assert table.identify("") is None


def test_the_single_token_and_the_file_combine(tmp_path: Path) -> None:
    table = TokenTable.load(token=BOB, tokens_file=write(tmp_path, f"alice:{ALICE}\n"))
    assert table.identify(BOB) == SINGLE_TOKEN_NAME and table.identify(ALICE) == "alice"
    assert not TokenTable.load()


@pytest.mark.parametrize(
    "text",
    [
        f"{ALICE}\n",  # no name
        f"al ice:{ALICE}\n",  # a name with a space
        "alice:short\n",  # a guessable token
        f"alice:{ALICE}\nalice:{BOB}\n",  # one name twice
        f"alice:{ALICE}\nbob:{ALICE}\n",  # one token for two clients
        "# only a comment\n",
    ],
)
def test_a_bad_tokens_file_is_refused_without_echoing_a_token(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        TokenTable.load(tokens_file=write(tmp_path, text))
    assert ALICE not in str(refused.value) and BOB not in str(refused.value)


def test_a_missing_tokens_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        TokenTable.load(tokens_file=tmp_path / "absent")


def test_a_handle_opens_for_its_own_identity_only() -> None:
    key = handle_key("server-secret-0123456789")
    alice, bob = SessionHandles(key, "alice"), SessionHandles(key, "bob")
    handle = alice.seal(SessionRef(SESSION))
    assert HANDLE_PATTERN.fullmatch(handle) and len(handle) <= 64 and alice.seal(SessionRef(SESSION)) == handle
    assert alice.open(handle) == SessionRef(SESSION)
    other = bob.seal(SessionRef(SESSION)).upper()
    for foreign in (handle, SESSION, handle[::-1], "A" * len(handle), other, handle[:-1]):
        with pytest.raises(NotFoundError):
            bob.open(foreign)
    # Another key (another deployment, or a rotated FLOW_MCP_SECRET) does not honour the handle either.
    with pytest.raises(NotFoundError):
        SessionHandles(handle_key("another-secret-0123456789"), "alice").open(handle)


@pytest.mark.parametrize("junk", ["", "has space", "x" * 200, f"{SESSION}.short", f"{SESSION}..{'A' * 22}", "a/b"])
def test_a_malformed_handle_is_an_invalid_argument(junk: str) -> None:
    with pytest.raises(InvalidArgumentError):
        SessionHandles(handle_key("server-secret-0123456789"), "alice").open(junk)


@given(
    st.from_regex(r"[A-Za-z0-9_-]{1,128}", fullmatch=True) | st.uuids().map(str),
    st.sampled_from(["assistant", "flow"]),
    st.text(min_size=1, max_size=40),
)
def test_every_session_id_and_kind_round_trip_through_its_handle(session_id: str, kind: str, identity: str) -> None:
    handles = SessionHandles(handle_key("server-secret-0123456789"), identity)
    session = SessionRef(session_id, kind)  # type: ignore[arg-type]
    handle = handles.seal(session)
    assert HANDLE_PATTERN.fullmatch(handle) and handles.open(handle) == session


def test_the_host_check_admits_loopback_the_bound_address_and_allowed_names() -> None:
    from flow_mcp.config import HttpOptions
    from flow_mcp.server.http import host_check, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("mcp.example.com")  # noqa: S104
    check = host_check(HttpOptions(host="10.1.2.3", allowed_hosts=("mcp.example.com", "proxy:8443")))
    for host in ("127.0.0.1:8000", "localhost:1", "[::1]:8000", "10.1.2.3:8000", "mcp.example.com", "proxy:8443"):
        assert check.host_ok(host), host
    for host in ("proxy:9999", "localhost:x", "localhost:", "attacker.example", None):
        assert not check.host_ok(host), host
    assert check.origin_ok("https://mcp.example.com") and check.origin_ok(None)
    assert not check.origin_ok("https://attacker.example")
    anywhere = host_check(HttpOptions(allowed_hosts=("*",)))
    assert anywhere.host_ok("attacker.example") and not anywhere.origin_ok("http://attacker.example")
