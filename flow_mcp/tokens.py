"""Bearer tokens of the MCP clients allowed on the HTTP server: ``name:token`` lines, kept only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from flow_mcp.config import HOW_TO_MAKE_ONE, MIN_SECRET_CHARS
from flow_mcp.errors import ConfigurationError

_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
SINGLE_TOKEN_NAME = "default"  # noqa: S105 -- a client name, not a password
"""The client name of FLOW_MCP_TOKEN, the one-token setup."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenTable:
    """Client names by the SHA-256 of their token. Lookups compare every entry in constant time."""

    entries: tuple[tuple[str, bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def identify(self, token: str) -> str | None:
        """The name of the client whose token this is, or None."""
        presented = _digest(token)
        found = None
        for name, digest in self.entries:  # no early exit: the time taken says nothing about which entry matched
            if hmac.compare_digest(presented, digest):
                found = name
        return found

    @classmethod
    def load(cls, *, token: str | None = None, tokens_file: Path | None = None) -> TokenTable:
        """FLOW_MCP_TOKEN (client name "default") and the lines of FLOW_MCP_TOKENS_FILE."""
        entries: list[tuple[str, bytes]] = []
        if token is not None:
            entries.append((SINGLE_TOKEN_NAME, _digest(_checked(token, "FLOW_MCP_TOKEN"))))
        if tokens_file is not None:
            entries += _read_file(tokens_file)
        names = [name for name, _ in entries]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                f"Token names must be unique; {sorted({n for n in names if names.count(n) > 1})} repeat."
            )
        if len({digest for _, digest in entries}) != len(entries):
            raise ConfigurationError("Two clients share one token: give each client its own token.")
        return cls(tuple(entries))


def _read_file(path: Path) -> list[tuple[str, bytes]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} cannot be read ({type(error).__name__}).") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        where = f"FLOW_MCP_TOKENS_FILE {path}, line {number}"
        if not sep or not _NAME.fullmatch(name.strip()):
            # The line is not echoed: it may hold a token.
            raise ConfigurationError(f"{where}: expected 'name:token' with a name of letters, digits, '_.@+-'.")
        hashed = _HASHED.fullmatch(secret.strip())
        digest = bytes.fromhex(hashed[1]) if hashed else _digest(_checked(secret.strip(), where))
        entries.append((name.strip(), digest))
    if not entries:
        raise ConfigurationError(f"FLOW_MCP_TOKENS_FILE {path} holds no 'name:token' line.")
    return entries


def _checked(token: str, where: str) -> str:
    if len(token) < MIN_SECRET_CHARS or any(c.isspace() for c in token):
        raise ConfigurationError(
            f"{where}: a token needs at least {MIN_SECRET_CHARS} characters and no spaces ({HOW_TO_MAKE_ONE})."
        )
    return token
