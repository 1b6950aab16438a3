"""``flow-mcp check``: verify a configuration the way a user would before wiring it into a host.

Steps, in order: key present, base URL reachable, key accepted, workspace found, one session created
(skipped with ``--dry-run``). Each step says ok or fail and, on failure, the fix to apply. A step that
needs an earlier one that failed is skipped. The key itself is never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from flow_mcp.config import Settings
from flow_mcp.errors import (
    AuthError,
    ConfigurationError,
    FlowHuntError,
    FlowMCPError,
    NotFoundError,
    TransportError,
)
from flow_mcp.flowhunt.client import FlowHuntClient
from flow_mcp.server.results import describe

Outcome = Literal["ok", "fail", "skip"]
ClientFactory = Callable[[Settings], FlowHuntClient]

# A session id that cannot exist: polling it shows whether anything answers at the base URL, with no key.
_PROBE_SESSION = "flow-mcp-check-probe"


@dataclass(frozen=True)
class Step:
    """The result of one check."""

    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None


async def run_checks(
    settings: Settings, *, dry_run: bool = False, client_factory: ClientFactory = FlowHuntClient
) -> list[Step]:
    """Run every check against the configured FlowHunt; never raises for a FlowHunt failure."""
    # A check should answer in seconds: one retry, short waits.
    quick = settings.model_copy(
        update={
            "max_retries": min(settings.max_retries, 1),
            "retry_max_seconds": min(settings.retry_max_seconds, 3.0),
            "timeout": min(settings.timeout, 15.0),
        }
    )
    steps = [_key_present(settings)]
    async with client_factory(quick) as client:
        steps.append(await _reachable(client, settings))
        if steps[-1].outcome != "ok" or steps[0].outcome != "ok":
            return [*steps, *_skipped("key accepted", "workspace", "create session", because="of the failure above")]
        accepted, workspace_of_key = await _key_accepted(client)
        steps.append(accepted)
        if accepted.outcome != "ok":
            return [*steps, *_skipped("workspace", "create session", because="the key was not accepted")]
        steps.append(await _workspace(client, settings, workspace_of_key))
        if steps[-1].outcome != "ok":
            return [*steps, *_skipped("create session", because="no usable workspace")]
        if dry_run:
            steps.append(Step("create session", "skip", "skipped (--dry-run)"))
        else:
            steps.append(await _create_session(client))
    return steps


def _skipped(*names: str, because: str) -> list[Step]:
    return [Step(name, "skip", f"skipped because {because}") for name in names]


def _key_present(settings: Settings) -> Step:
    if settings.api_key is not None and settings.api_key.get_secret_value().strip():
        return Step("API key", "ok", "present (FLOWHUNT_API_KEY)")
    return Step(
        "API key",
        "fail",
        "FLOWHUNT_API_KEY is not set",
        'Set FLOWHUNT_API_KEY in your shell, or in the "env" block of the host\'s config for this server '
        "(hosts do not pass your shell's variables on); or pass --api-key. Try --sandbox to check without an account.",
    )


async def _reachable(client: FlowHuntClient, settings: Settings) -> Step:
    where = settings.base_url
    try:
        await client.poll(_PROBE_SESSION, "0")
    except TransportError as error:
        return Step(
            "base URL",
            "fail",
            f"{where} is not reachable: {error}",
            "Check FLOWHUNT_BASE_URL (default https://api.flowhunt.io), your network, proxy and firewall.",
        )
    except FlowHuntError:
        pass  # any HTTP answer proves the URL is reachable; whether it is FlowHunt shows in the next step
    return Step("base URL", "ok", f"{where} reachable")


async def _key_accepted(client: FlowHuntClient) -> tuple[Step, str | None]:
    name = "key accepted"
    try:
        me = await client.me()
    except AuthError as error:
        return Step(
            name,
            "fail",
            f"FlowHunt rejected the API key ({error.status_code})",
            "Copy the key again from FlowHunt (API keys in your workspace settings) into FLOWHUNT_API_KEY. "
            "If your key must be sent as an 'Api-Key' header, set FLOWHUNT_AUTH_HEADER=api-key.",
        ), None
    except NotFoundError:
        return Step(
            name,
            "fail",
            "the base URL answered, but not like FlowHunt's API (404 on /v2/auth/me)",
            "Set FLOWHUNT_BASE_URL to FlowHunt's API, https://api.flowhunt.io (not the web app's address).",
        ), None
    except FlowMCPError as error:
        return Step(name, "fail", "could not verify the key", describe(error)), None
    found = me.get("api_key_workspace_id")
    return Step(name, "ok", "accepted by FlowHunt"), found.strip() if isinstance(found, str) and found.strip() else None


async def _workspace(client: FlowHuntClient, settings: Settings, workspace_of_key: str | None) -> Step:
    name = "workspace"
    configured = settings.workspace_id
    if configured:
        if workspace_of_key and workspace_of_key != configured:
            return Step(
                name,
                "fail",
                f"FLOWHUNT_WORKSPACE_ID is {configured}, but the API key belongs to workspace {workspace_of_key}",
                f"Set FLOWHUNT_WORKSPACE_ID={workspace_of_key}, or leave it unset to use the key's workspace, "
                "or use a key of the workspace you want.",
            )
        return Step(name, "ok", f"{configured} (FLOWHUNT_WORKSPACE_ID)")
    try:
        found = await client.workspace_id()
    except ConfigurationError as error:
        return Step(name, "fail", "FlowHunt did not say which workspace the key belongs to", str(error))
    except FlowMCPError as error:
        return Step(name, "fail", "could not discover the workspace", describe(error))
    return Step(name, "ok", f"{found} (discovered from the API key)")


async def _create_session(client: FlowHuntClient) -> Step:
    name = "create session"
    try:
        created = await client.create_session()
    except AuthError as error:
        return Step(
            name,
            "fail",
            f"FlowHunt refused to create a session ({error.status_code})",
            "The key may not be allowed in this workspace: check FLOWHUNT_WORKSPACE_ID (or unset it), and try "
            "FLOWHUNT_AUTH_HEADER=api-key if your key must be sent as an 'Api-Key' header.",
        )
    except FlowMCPError as error:
        return Step(name, "fail", "could not create a session", describe(error))
    return Step(name, "ok", f"session {created.session_id} created: flow_mcp is ready for your MCP host")


def report(steps: list[Step], write: Callable[[str], object]) -> int:
    """Print one line per step (and its fix); 0 when nothing failed, else 1."""
    for step in steps:
        mark = {"ok": "ok  ", "fail": "FAIL", "skip": "--  "}[step.outcome]
        write(f"{mark}  {step.name}: {step.detail}\n")
        if step.fix:
            write(f"      fix: {step.fix}\n")
    failed = [step for step in steps if step.outcome == "fail"]
    write("All checks passed.\n" if not failed else f"{len(failed)} check(s) failed.\n")
    return 1 if failed else 0
