"""The exception tree of flow_mcp.

Every failure of a FlowHunt call is translated once, in ``client.py``, into one of these::

    FlowMCPError
    ├── InvalidArgumentError        bad input from a tool caller (session id, cursor, message, ...)
    ├── TurnInProgressError         a new message for a session whose last turn is still running
    ├── ConfigurationError          something the user must set (API key, workspace)
    │   └── MissingKeyError         no FlowHunt API key at all
    └── FlowHuntError               anything that went wrong talking to FlowHunt
        ├── NotDeliveredError       invoke failed and the message is not in the session (safe to resend)
        ├── UploadFailedError       an attachment upload failed; says which session and whether it may be there
        ├── HookNotResumedError     resume-hook answered, but the hook was not resumed (already answered, ...)
        ├── NotResumableError       FlowHunt refuses resume-hook for this session (answer in FlowHunt)
        ├── TransportError          no usable HTTP response (connect, timeout, reset)
        ├── ResponseShapeError      a 2xx whose body makes no sense (not JSON, wrong shape)
        │   └── ResponseTooLargeError   any answer past FLOW_MCP_MAX_RESPONSE_BYTES (never fetched again)
        └── APIError                FlowHunt answered with an error status
            ├── AuthError           401 / 403
            ├── OutOfCreditsError   402: the workspace has no credits left (never retried)
            ├── NotFoundError       404
            ├── ValidationError     422 (FastAPI's detail list)
            ├── RateLimitError      429 (carries retry_after)
            └── ServerError         5xx

No message built here ever contains an API key or a request header: the client scrubs every string of a
FlowHunt answer before anything here reads it, so a detail is cut only after it was scrubbed.
"""

from __future__ import annotations

from typing import Any

_MAX_DETAIL_CHARS = 500


class FlowMCPError(Exception):
    """Base of every error flow_mcp raises on purpose."""


class InvalidArgumentError(FlowMCPError, ValueError):
    """A tool argument or CLI input that cannot be used as given."""


class TurnInProgressError(FlowMCPError):
    """The session's previous turn is still running; its text says how to follow it."""


class ConfigurationError(FlowMCPError):
    """A setting the user must provide or fix."""


class MissingKeyError(ConfigurationError):
    """No FlowHunt API key was given; its text says where to give one."""


class FlowHuntError(FlowMCPError):
    """A FlowHunt call failed."""


class UploadFailedError(FlowHuntError):
    """An attachment could not be uploaded; its text names the session and whether the file may be there."""


class NotDeliveredError(FlowHuntError):
    """invoke failed, and the message was looked for and is not in the session: sending it again is safe."""


class HookNotResumedError(FlowHuntError):
    """FlowHunt answered resume-hook without resuming: ``status`` says why (already_received, not_found, ...)."""

    def __init__(self, hook_id: str, status: str) -> None:
        super().__init__(f"FlowHunt did not resume hook {hook_id!r}: {status}")
        self.hook_id = hook_id
        self.status = status


class NotResumableError(FlowHuntError):
    """FlowHunt refuses resume-hook for this session (a Flow Assistant session, 404/405/422)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"FlowHunt refused to resume a hook of this session ({status_code})")
        self.status_code = status_code


class TransportError(FlowHuntError):
    """FlowHunt could not be reached or the connection broke before a full response."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        # False only when the request certainly never reached FlowHunt (connect failure):
        # the one case in which a non-idempotent call may be sent again.
        self.request_sent = request_sent


class ResponseShapeError(FlowHuntError):
    """FlowHunt answered 2xx with a body that is not what the API describes."""


class ResponseTooLargeError(ResponseShapeError):
    """FlowHunt's answer grew past FLOW_MCP_MAX_RESPONSE_BYTES once decoded; reading stopped there."""


class APIError(FlowHuntError):
    """FlowHunt answered with an error status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"FlowHunt answered {status_code}: {detail}" if detail else f"FlowHunt answered {status_code}")
        self.status_code = status_code
        self.detail = detail


class AuthError(APIError):
    """The API key is missing, wrong, or not allowed for this workspace."""


class OutOfCreditsError(APIError):
    """The workspace is out of credits (402): not transient, so never retried."""


class NotFoundError(APIError):
    """The session (or other resource) does not exist."""


class ValidationError(APIError):
    """FlowHunt rejected the request's parameters (422)."""


class RateLimitError(APIError):
    """Too many requests (429)."""

    def __init__(self, status_code: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(status_code, detail)
        self.retry_after = retry_after


class ServerError(APIError):
    """FlowHunt failed (5xx)."""


def may_have_arrived(error: FlowHuntError) -> bool:
    """Whether a failed invoke (or resume-hook, or upload) may still have been taken in by FlowHunt (so it must not
    simply be sent again)."""
    if isinstance(error, NotDeliveredError | HookNotResumedError | NotResumableError):
        return False
    if isinstance(error, TransportError):
        return error.request_sent
    if isinstance(error, APIError):
        # 4xx are refusals; 429 and 503 are answered before FlowHunt takes a message in.
        return isinstance(error, ServerError) and error.status_code != 503
    return True  # FlowHunt answered 2xx with an unreadable body: the message was taken in


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthError,
    402: OutOfCreditsError,
    403: AuthError,
    404: NotFoundError,
    422: ValidationError,
}


def error_for_status(
    status_code: int, body: Any, retry_after: float | None = None, location: str | None = None
) -> APIError:
    """Map an error status and its decoded JSON body (or None) to the matching APIError.

    ``location`` is where a redirect points, already made safe to show.
    """
    detail = detail_text(body)
    if 300 <= status_code < 400:
        # flow_mcp follows no redirect (it would carry the key elsewhere): the base URL is what needs fixing.
        where = f"a redirect to {location}" if location else "a redirect"
        return APIError(
            status_code,
            f"{where}. Check FLOWHUNT_BASE_URL: it must be FlowHunt's API exactly, with https:// "
            "(e.g. https://api.flowhunt.io)",
        )
    if status_code == 429:
        return RateLimitError(status_code, detail, retry_after)
    kind = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIError)
    return kind(status_code, detail)


def sentences(*parts: str) -> str:
    """Texts joined as sentences: each ends with a full stop (unless it has its own) before the next begins."""
    return " ".join(part if part.endswith((".", "!", "?")) else part + "." for part in parts)


def detail_text(body: Any) -> str:
    """FastAPI's ``detail`` as one short line: a string as is, a 422 list as ``loc: msg`` items."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        text = detail
    elif isinstance(detail, list):
        text = "; ".join(_validation_item(item) for item in detail[:5])
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "…"


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)[:100]
    loc = item.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
    msg = str(item.get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg
