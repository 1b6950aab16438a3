"""Session handles: FlowHunt session ids signed for one client identity, so that no client can use another's.

FlowHunt session ids are capabilities (invoke and poll need no key). A server shared by a team therefore never
hands out a bare id: it hands out ``<session id>.<tag>``, where the tag is an HMAC of the id and the caller's
identity. Any replica holding the same key checks a handle without shared storage, and a restart keeps it valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from flow_mcp.errors import InvalidArgumentError, NotFoundError

_TAG_BYTES = 16  # 128 bits: guessing a tag is out of reach
_HANDLE = re.compile(r"(?P<session>[A-Za-z0-9_-]{1,128})\.(?P<tag>[A-Za-z0-9_-]{22})")
_DOMAIN = b"flow-mcp session handle v1\0"
HANDLE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{22})?$")  # used with fullmatch
"""What tools accept as a session id: a FlowHunt id (stdio, as client.SESSION_ID_PATTERN) or a handle (HTTP)."""


def handle_key(secret: str) -> bytes:
    """The HMAC key for handles, from FLOW_MCP_SECRET or, without it, from a FlowHunt API key."""
    return hashlib.sha256(_DOMAIN + secret.encode()).digest()


class SessionHandles:
    """Seals and opens the session handles of one client identity."""

    def __init__(self, key: bytes, identity: str) -> None:
        self._key = key
        self._identity = identity.encode()

    def seal(self, session_id: str) -> str:
        """The handle this identity uses for ``session_id``."""
        return f"{session_id}.{self._tag(session_id)}"

    def open(self, handle: str) -> str:
        """The session id inside ``handle``, if it was sealed for this identity.

        A handle of another identity, a forged one and a bare FlowHunt id all get the same NotFoundError as a
        session FlowHunt does not know: a caller learns nothing about sessions that are not theirs.
        """
        if not isinstance(handle, str) or not HANDLE_PATTERN.fullmatch(handle):
            raise InvalidArgumentError(
                "Malformed session_id: pass the session_id exactly as create_session or ask returned it."
            )
        match = _HANDLE.fullmatch(handle)
        if match is None or not hmac.compare_digest(match["tag"], self._tag(match["session"])):
            raise NotFoundError(404, "no such session")
        return match["session"]

    def _tag(self, session_id: str) -> str:
        digest = hmac.new(self._key, self._identity + b"\0" + session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_TAG_BYTES]).decode().rstrip("=")
