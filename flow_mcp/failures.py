"""Error texts for tool callers: what went wrong and what to do next, never a secret or a traceback."""

from __future__ import annotations

from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowHuntError,
    FlowMCPError,
    InvalidArgumentError,
    NotDeliveredError,
    NotFoundError,
    RateLimitError,
    ResponseShapeError,
    ServerError,
    TransportError,
    ValidationError,
    may_have_arrived,
)


def describe(
    error: FlowMCPError,
    *,
    session_id: str | None = None,
    cursor: str | None = None,
    invoking: bool = False,
    key_header: str | None = None,
) -> str:
    """The tool error text for ``error``, with how to resume when a turn may still be running.

    ``invoking`` says the failure happened while sending a message, which FlowHunt may have taken in;
    ``key_header`` names the header that brought the caller's own FlowHunt key, when it did.
    """
    if isinstance(error, AuthError) and key_header:
        return (
            f"FlowHunt rejected the API key sent in the {key_header} header ({error.status_code}): put your own "
            "FlowHunt API key in that header, in this server's entry of your MCP host's config."
        )
    text = _what_to_do(error, session_id)
    if not session_id or isinstance(error, InvalidArgumentError | NotFoundError | ConfigurationError):
        return text
    if cursor:
        return text + (
            f' The turn may still be running on FlowHunt and nothing is lost: resume with poll_events(session_id="'
            f'{session_id}", cursor="{cursor}", wait_seconds=30).'
        )
    if invoking and isinstance(error, FlowHuntError) and not isinstance(error, NotDeliveredError):
        if may_have_arrived(error):
            return text + (
                f' The message may have reached FlowHunt: check with poll_events(session_id="{session_id}", '
                'cursor="0") before sending it again.'
            )
        return text + " FlowHunt did not take the message in, so sending it again is safe."
    return text


def _what_to_do(error: FlowMCPError, session_id: str | None) -> str:
    if isinstance(error, InvalidArgumentError | ConfigurationError):
        return str(error)
    if isinstance(error, NotFoundError):
        which = f"'{session_id}'" if session_id else ""
        return (
            f"Unknown session {which}: it does not exist or has expired. "
            "Call create_session, or ask without session_id, to start a new one."
        ).replace("  ", " ")
    if isinstance(error, AuthError):
        return (
            f"FlowHunt rejected the API key ({error.status_code}): check FLOWHUNT_API_KEY and FLOWHUNT_WORKSPACE_ID. "
            "If your key must be sent as an 'Api-Key' header, set FLOWHUNT_AUTH_HEADER=api-key."
        )
    if isinstance(error, RateLimitError):
        wait = f" Retry in {error.retry_after:.0f} s." if error.retry_after is not None else " Retry in a minute."
        return "FlowHunt is rate limiting this API key (429)." + wait
    if isinstance(error, ValidationError):
        return f"FlowHunt rejected the request (422): {error.detail or 'no details'}. Fix the arguments and retry."
    if isinstance(error, ServerError):
        return f"FlowHunt failed ({error.status_code}){': ' + error.detail if error.detail else ''}. Retry shortly."
    if isinstance(error, TransportError):
        return f"{error} Check FLOWHUNT_BASE_URL and the network, then retry."
    if isinstance(error, ResponseShapeError):
        return f"{error} Retry shortly."
    return str(error)
