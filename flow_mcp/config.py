"""Typed settings, read from the environment (``FLOWHUNT_*`` for the API, ``FLOW_MCP_*`` for the server)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.flowhunt.io"

MIN_SECRET_CHARS = 16  # shorter tokens and keys can be guessed over the network
HOW_TO_MAKE_ONE = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

KEY_NOT_ASCII = (
    "has a character that is not printable ASCII (a curly quote, an accented letter, a space or a line break "
    "pasted with it?): copy the key again from FlowHunt"
)

AuthHeaderStyle = Literal["bearer", "api-key"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]


class Settings(BaseSettings):
    """Everything flow_mcp can be told; each field names its environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="",
        extra="ignore",
        # Constructor keywords (field names, used by the CLI's flags) and variables both populate a field.
        populate_by_name=True,
        # GUI hosts often write "" for a variable the user left blank: treat it as unset.
        env_ignore_empty=True,
        validate_default=True,
        # An error names the setting and what is wrong, never the value given (it may be a key).
        hide_input_in_errors=True,
    )

    api_key: SecretStr | None = Field(
        default=None, validation_alias="FLOWHUNT_API_KEY", description="FlowHunt API key (secret)."
    )
    workspace_id: str | None = Field(
        default=None,
        validation_alias="FLOWHUNT_WORKSPACE_ID",
        description="FlowHunt workspace; found from the API key when unset.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, validation_alias="FLOWHUNT_BASE_URL", description="FlowHunt API base URL."
    )
    auth_header: AuthHeaderStyle = Field(
        default="bearer",
        validation_alias="FLOWHUNT_AUTH_HEADER",
        description="How the key is sent: 'bearer' (Authorization: Bearer) or 'api-key' (Api-Key header).",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        validation_alias="FLOWHUNT_TIMEOUT",
        description="Seconds allowed for one FlowHunt request, from connecting to its last byte.",
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        validation_alias="FLOW_MCP_MAX_RESPONSE_BYTES",
        description="Largest FlowHunt answer read (bytes, after decompression); a larger one fails that call.",
    )
    ask_timeout: float = Field(
        default=50.0,
        gt=0,
        le=3600,
        validation_alias="FLOW_MCP_ASK_TIMEOUT",
        description="Seconds `ask` follows a turn before returning status 'running' with a cursor.",
    )
    settle_seconds: float = Field(
        default=1.5,
        ge=0,
        le=60,
        validation_alias="FLOW_MCP_SETTLE_SECONDS",
        description="Quiet time after an answer before a turn counts as completed.",
    )
    heartbeat_seconds: float = Field(
        default=4.0,
        gt=0,
        le=5,
        validation_alias="FLOW_MCP_HEARTBEAT_SECONDS",
        description="Longest gap between progress notifications during `ask`.",
    )
    poll_min_interval: float = Field(
        default=0.05,
        gt=0,
        le=10,
        validation_alias="FLOW_MCP_POLL_MIN_INTERVAL",
        description="Shortest pause between two polls of one turn.",
    )
    poll_thinking_max_interval: float = Field(
        default=1.0,
        gt=0,
        le=30,
        validation_alias="FLOW_MCP_POLL_THINKING_MAX_INTERVAL",
        description="Longest pause between polls while no tool call is open (an answer is seen at most this late).",
    )
    poll_max_interval: float = Field(
        default=5.0,
        gt=0,
        le=60,
        validation_alias="FLOW_MCP_POLL_MAX_INTERVAL",
        description="Longest pause between polls while a tool call runs.",
    )
    poll_lateness: float = Field(
        default=0.06,
        gt=0,
        le=10,
        validation_alias="FLOW_MCP_POLL_LATENESS",
        description="How late, on average, the schedule lets the next event be seen before it polls; "
        "smaller: sooner, with more polls.",
    )
    poll_rate: float = Field(
        default=2.0,
        gt=0,
        le=100,
        validation_alias="FLOW_MCP_POLL_RATE",
        description="Polls per second one turn spends at most on average; a quiet stretch saves up for "
        "FLOW_MCP_POLL_BUDGET_SECONDS of them.",
    )
    poll_budget_seconds: float = Field(
        default=4.0,
        gt=0,
        le=60,
        validation_alias="FLOW_MCP_POLL_BUDGET_SECONDS",
        description="How many seconds' worth of FLOW_MCP_POLL_RATE a turn can save up for a burst of events.",
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        validation_alias="FLOW_MCP_MAX_RETRIES",
        description="Retries of one FlowHunt request on connect errors, 429 and 5xx "
        "(never a resend of a message FlowHunt may have taken in).",
    )
    retry_max_seconds: float = Field(
        default=20.0,
        ge=0,
        le=300,
        validation_alias="FLOW_MCP_RETRY_MAX_SECONDS",
        description="Total time one request may spend waiting between retries.",
    )
    max_retry_after: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        validation_alias="FLOW_MCP_MAX_RETRY_AFTER",
        description="Longest pause a 429's Retry-After imposes on the API key; longer values are cut to this.",
    )
    max_events_per_poll: int = Field(
        default=200,
        ge=1,
        le=10_000,
        validation_alias="FLOW_MCP_MAX_EVENTS_PER_POLL",
        description="Most events one poll_events result carries; the rest come with the next call.",
    )
    max_result_bytes: int = Field(
        default=1_000_000,
        ge=100_000,
        le=100_000_000,
        validation_alias="FLOW_MCP_MAX_RESULT_BYTES",
        description="Most bytes one tool result or resource carries; poll_events pages beyond it, huge fields are cut.",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        le=1024**3,
        validation_alias="FLOW_MCP_MAX_ATTACHMENT_BYTES",
        description="Largest file run_flow attaches to a flow session (bytes); a larger one is refused before upload.",
    )
    max_rps: float = Field(
        default=50.0,
        gt=0,
        le=10_000,
        validation_alias="FLOW_MCP_MAX_RPS",
        description="Requests per second to FlowHunt for one API key, shared fairly by all turns.",
    )
    elicitation: bool = Field(
        default=True,
        validation_alias="FLOW_MCP_ELICITATION",
        description="When a turn waits on a person, ask the MCP host's user (elicitation) and go on with the "
        "turn; 'false' returns status 'waiting_for_input' instead.",
    )
    elicitation_timeout: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        validation_alias="FLOW_MCP_ELICITATION_TIMEOUT",
        description="Seconds the user has to answer such a question; after that the turn is returned waiting.",
    )
    flow_tools: str = Field(
        default="",
        validation_alias="FLOW_MCP_FLOW_TOOLS",
        description="Published flows that become tools of their own (flow_<name>): 'all', or a comma list of flow "
        "ids and name globs (case-insensitive); empty: none.",
    )
    flow_tools_exclude: str = Field(
        default="",
        validation_alias="FLOW_MCP_FLOW_TOOLS_EXCLUDE",
        description="Published flows left out of FLOW_MCP_FLOW_TOOLS, in the same form.",
    )
    flow_tools_ttl: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        validation_alias="FLOW_MCP_FLOW_TOOLS_TTL",
        description="Seconds between re-reads of the published flows behind the flow tools; a change notifies "
        "connected clients.",
    )
    token: SecretStr | None = Field(
        default=None,
        validation_alias="FLOW_MCP_TOKEN",
        description="HTTP only: the bearer token MCP clients must send (secret; client name 'default').",
    )
    tokens_file: Path | None = Field(
        default=None,
        validation_alias="FLOW_MCP_TOKENS_FILE",
        description="HTTP only: file of 'name:token' lines, one per MCP client ('name:sha256:HEX' stores the hash "
        "of a long token).",
    )
    secret: SecretStr | None = Field(
        default=None,
        validation_alias="FLOW_MCP_SECRET",
        description="HTTP only: key that encrypts session handles; the same on every replica (secret). "
        "Default: derived from the server's FlowHunt key; required with --flowhunt-key-from-client.",
    )
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        validation_alias="FLOW_MCP_SHUTDOWN_GRACE",
        description="HTTP only: seconds running calls may go on after SIGTERM; then `ask` returns 'running' and "
        "the process ends within a few seconds.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias="FLOW_MCP_REDIS_URL",
        description="HTTP only: Redis that replicas on one FlowHunt key share (request budget, 429 pause, one turn "
        "per session, cancellation), e.g. redis://redis:6379/0 (secret: it may carry a password). "
        'Unset: all of it stays in this process. Needs pip install "flow-mcp[redis]".',
    )
    redis_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        validation_alias="FLOW_MCP_REDIS_LEASE_SECONDS",
        description="HTTP only, with Redis: how long a replica's hold on a session's turn lasts unless renewed; "
        "a session of a replica that died is free after it.",
    )
    redis_timeout: float = Field(
        default=0.5,
        gt=0,
        le=10,
        validation_alias="FLOW_MCP_REDIS_TIMEOUT",
        description="HTTP only, with Redis: seconds one Redis call may take; past it, or when Redis is down, the "
        "replica goes on alone (degraded) and tries Redis again every second.",
    )
    log_level: LogLevel = Field(
        default="info", validation_alias="FLOW_MCP_LOG_LEVEL", description="Log level (stderr)."
    )
    log_format: LogFormat = Field(
        default="json", validation_alias="FLOW_MCP_LOG_FORMAT", description="'json' lines or 'console'."
    )

    @property
    def settle_ms(self) -> int:
        """The settle window in milliseconds, the unit turn logic works in."""
        return int(self.settle_seconds * 1000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value) < len("http://x"):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.flowhunt.io")
        # user:password@ would be logged with the URL and sent as Basic auth in place of the key: refuse it,
        # without repeating it (the message reaches the terminal and the logs).
        if "@" in urlsplit(value).netloc:
            raise ValueError(
                "must not carry a user name or password (user:password@host): remove them; "
                "FlowHunt takes the API key from FLOWHUNT_API_KEY"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, not at the first Redis call, so a typo stops the server at start; the value is never shown.
        if value is None:
            return value
        url = value.get_secret_value()
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL, e.g. redis://127.0.0.1:6379/0")
        if not _readable_redis_url(url):
            raise ValueError(
                "cannot be read as redis://[user:password@]host[:port][/db]: check the host and port, and "
                "percent-encode any of # / ? @ : in the user or password (# as %23, / as %2F)"
            )
        return value

    @field_validator("api_key")
    @classmethod
    def _sendable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_sendable_key(value.get_secret_value()):
            raise ValueError(KEY_NOT_ASCII)
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"needs at least {MIN_SECRET_CHARS} characters; {HOW_TO_MAKE_ONE}")
        return value

    @field_validator("flow_tools", "flow_tools_exclude")
    @classmethod
    def _flow_list(cls, value: str) -> str:
        # One spelling of a list: items stripped, empty ones dropped ("a, ,b" is "a,b").
        return ",".join(item.strip() for item in value.split(",") if item.strip())

    @field_validator("workspace_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("log_level", "log_format", "auth_header", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True)
class HttpOptions:
    """How the HTTP server listens and whom it lets in (the ``serve --transport http`` flags)."""

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    stateless: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    key_from_client: bool = False


def is_sendable_key(key: str) -> bool:
    """Whether ``key`` can travel in an HTTP header as FlowHunt issued it: printable ASCII, no space."""
    return all("!" <= char <= "~" for char in key)


def _readable_redis_url(url: str) -> bool:
    """Whether redis-py reads ``url`` as written (it parses with urllib too). A # or / in a password, unencoded,
    ends the host part there: the rest of the password becomes the port (an error that quotes it) or a fragment
    or path that redis-py drops without a word, and it connects somewhere else."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    if parts.fragment or "@" in parts.query:
        return False
    return parts.scheme == "unix" or re.fullmatch(r"(/\d*)?", parts.path) is not None  # a path is the db number


def redis_password(settings: Settings) -> str | None:
    """The password inside FLOW_MCP_REDIS_URL, if any: a secret of its own for the log's redaction."""
    url = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def key_fingerprint(key: str) -> str:
    """What stands for a FlowHunt key wherever one must be told apart from another: never the key itself."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


HTTP_ONLY: frozenset[str] = frozenset(
    {"token", "tokens_file", "secret", "shutdown_grace", "redis_url", "redis_lease_seconds", "redis_timeout"}
)
"""Settings only ``serve --transport http`` reads (server.json, which describes the stdio package, leaves them out)."""

ENV_VARS: dict[str, str] = {
    name: str(field.validation_alias)  # every field above names its variable
    for name, field in Settings.model_fields.items()
}
"""Field name -> environment variable, for the CLI's help and the README check."""
