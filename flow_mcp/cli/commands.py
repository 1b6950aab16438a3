"""The ``flow-mcp`` command: serve (MCP over stdio or streamable HTTP), sandbox, demo, ask, flows, run, check and
config."""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

import anyio
import pydantic
import structlog
from pydantic import SecretStr

from flow_mcp._version import __version__
from flow_mcp.cli.hostconfig import HOSTS
from flow_mcp.cli.logs import configure_logging
from flow_mcp.config import ENV_VARS, HttpOptions, Settings, redis_password
from flow_mcp.telemetry import sdk as telemetry_sdk

log = structlog.get_logger()

# Flag -> Settings field: every setting has a flag, named after its field; the flag wins over the environment.
SETTING_FLAGS: dict[str, str] = {f"--{name.replace('_', '-')}": name for name in Settings.model_fields}
_COMMANDS = ("serve", "sandbox", "demo", "ask", "flows", "run", "check", "config")
_HTTP = HttpOptions()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line, no usage dump: the user sees what to fix.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``flow-mcp`` script and ``python -m flow_mcp``."""
    _utf8_console()
    args = _parser().parse_args(_with_default_command(list(sys.argv[1:] if argv is None else argv)))
    try:
        code = args.run(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _utf8_console() -> None:
    # Windows consoles default to a legacy code page, on which emoji in an answer or a log line would crash
    # the write. (On stdio the MCP SDK wraps stdout in UTF-8 by itself.)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(encoding="utf-8", errors="backslashreplace")


def _with_default_command(argv: list[str]) -> list[str]:
    # Bare `flow-mcp` (what MCP hosts launch) and `flow-mcp --sandbox` mean `flow-mcp serve ...`.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["serve", *argv]
    return argv


def _parser() -> argparse.ArgumentParser:
    settings_flags = _Parser(add_help=False)
    group = settings_flags.add_argument_group("FlowHunt and server settings (each overrides its environment variable)")
    for flag, field in SETTING_FLAGS.items():
        info = Settings.model_fields[field]
        group.add_argument(
            flag, dest=field, default=None, metavar=field.upper(), help=f"{info.description} [{ENV_VARS[field]}]"
        )

    parser = _Parser(prog="flow-mcp", description="MCP server for FlowHunt's AI Flow Assistant.")
    parser.add_argument("--version", action="version", version=f"flow-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser(
        "serve", parents=[settings_flags], help="run the MCP server over stdio (the default) or streamable HTTP"
    )
    serve.add_argument("--sandbox", action="store_true", help="use a built-in FlowHunt simulator: no account needed")
    serve.add_argument(
        "--transport", choices=("stdio", "http"), default="stdio", help="stdio (one host launches it) or http"
    )
    http = serve.add_argument_group("HTTP transport (with --transport http)")
    http.add_argument("--host", default=_HTTP.host, help=f"interface to bind (default {_HTTP.host}: this machine only)")
    http.add_argument("--port", type=_port, default=_HTTP.port, help=f"port (default {_HTTP.port}; 0 picks a free one)")
    http.add_argument("--path", type=_path, default=_HTTP.path, help=f"path of the MCP endpoint (default {_HTTP.path})")
    http.add_argument(
        "--stateless", action="store_true", help="keep no connection state, so any replica serves any request"
    )
    http.add_argument(
        "--no-auth",
        action="store_true",
        help="serve a non-loopback host without bearer tokens (only behind something that authenticates)",
    )
    http.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a Host header to accept besides loopback, e.g. the name behind your reverse proxy (repeatable; "
        "'*' turns the check off)",
    )
    http.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser Origin to accept, e.g. https://app.example.com (repeatable)",
    )
    http.add_argument(
        "--flowhunt-key-from-client",
        action="store_true",
        help="each MCP client sends its own FlowHunt API key in the X-FlowHunt-Api-Key header; the server keeps none",
    )
    # What `serve` over stdio must refuse: any flag of the HTTP group set away from its default.
    serve.set_defaults(run=_serve, http_flags=tuple(http._group_actions))

    sandbox = commands.add_parser("sandbox", help="run the FlowHunt simulator alone (for tests and trials)")
    sandbox.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    sandbox.set_defaults(run=_sandbox)

    demo = commands.add_parser("demo", help="try the whole path against the simulator, no account needed")
    demo.set_defaults(run=_demo)

    ask = commands.add_parser("ask", parents=[settings_flags], help="one turn from a terminal, with live progress")
    ask.add_argument("message", help="what to ask the Flow Assistant")
    ask.add_argument("--session", dest="session_id", default=None, help="continue this session")
    ask.add_argument("--sandbox", action="store_true", help="use a built-in FlowHunt simulator: no account needed")
    ask.set_defaults(run=_ask)

    flows = commands.add_parser("flows", parents=[settings_flags], help="list the published flows: name, id, input")
    flows.add_argument("query", nargs="?", default=None, help="only flows with this in their name or description")
    flows.add_argument("--sandbox", action="store_true", help="use a built-in FlowHunt simulator: no account needed")
    flows.set_defaults(run=_flows)

    run = commands.add_parser(
        "run", parents=[settings_flags], help="one turn of a published flow from a terminal, with live progress"
    )
    run.add_argument("flow", metavar="FLOW", help="the flow: its id or its exact name (see flow-mcp flows)")
    run.add_argument("message", help="the input for the flow")
    run.add_argument("--session", dest="session_id", default=None, help="continue this flow session")
    run.add_argument(
        "--var",
        dest="variables",
        action="append",
        type=_variable,
        default=[],
        metavar="NAME=VALUE",
        help="a variable of the flow, for a new session (repeatable)",
    )
    run.add_argument("--sandbox", action="store_true", help="use a built-in FlowHunt simulator: no account needed")
    run.set_defaults(run=_run)

    check = commands.add_parser(
        "check", parents=[settings_flags], help="verify key, base URL, workspace and a session round trip"
    )
    check.add_argument("--dry-run", action="store_true", help="skip the create-session round trip")
    check.add_argument("--sandbox", action="store_true", help="check against a built-in FlowHunt simulator")
    check.set_defaults(run=_check)

    config = commands.add_parser("config", help="print the config snippet for an MCP host, with absolute paths")
    config.add_argument("host", choices=HOSTS, help="the MCP host: " + ", ".join(HOSTS))
    config.add_argument("--sandbox", action="store_true", help="a config that needs no account (the simulator)")
    config.set_defaults(run=_host_config)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {field: getattr(args, field) for field in SETTING_FLAGS.values() if getattr(args, field) is not None}
    try:
        return Settings(**overrides)
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = ENV_VARS.get(field, field)
        flag = next((f for f, v in SETTING_FLAGS.items() if v == field or ENV_VARS[v] == field), "")
        where = f"{name} / {flag}" if flag else name
        _fail(f"invalid setting {where}: {problem['msg']}")


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"flow-mcp: error: {message}\n")
    sys.exit(2)


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


def _variable(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def _path(text: str) -> str:
    if not text.startswith("/") or any(c.isspace() or c in "?#" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL path like /mcp")
    return text


def _configure(settings: Settings, level: str | None = None, fmt: str | None = None) -> None:
    """Logging to stderr with the secrets redacted; ``level``/``fmt`` override the settings for terminal commands."""
    given = (settings.api_key, settings.token, settings.secret, settings.redis_url)
    secrets = [s.get_secret_value() for s in given if s is not None] + [p for p in [redis_password(settings)] if p]
    secrets += telemetry_sdk.header_secrets()
    configure_logging(level or settings.log_level, fmt or settings.log_format, secrets=secrets)
    _start_telemetry()


def _start_telemetry() -> None:
    """OpenTelemetry as the OTEL_* variables ask (docs/observability.md); nothing is imported when none does."""
    setup = telemetry_sdk.setup_from_environment()
    if setup.on:
        log.info("telemetry_on", traces=list(setup.traces), metrics=list(setup.metrics))
    for problem in setup.problems:
        log.warning("telemetry_not_set_up", problem=problem)


@contextlib.contextmanager
def _maybe_sandbox(settings: Settings, enabled: bool) -> Iterator[Settings]:
    """With ``--sandbox``: a simulator in a background thread, and settings pointing at it."""
    if not enabled:
        yield settings
        return
    from flow_mcp.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig.from_env()) as sandbox:
        yield settings.model_copy(
            update={"base_url": sandbox.url, "api_key": SecretStr(sandbox.config.api_key), "workspace_id": None}
        )


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """No cyclic garbage collection while the server's code loads; what loaded stays out of later collections.

    Loading the MCP SDK and the server creates some 150,000 objects (pydantic models and their schemas, mostly)
    that live as long as the process. Collections while they are created only walk them again and again, about
    a tenth of the start; frozen, they are not walked by any later collection either. The price: the few hundred
    kB of cyclic garbage the loading leaves is never freed.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _serve(args: argparse.Namespace) -> int:
    with _loading():
        from flow_mcp.server.app import build_server

    settings = _settings(args)
    _configure(settings)
    if args.transport == "http":
        return _serve_http(args, settings)
    http_only = [action.option_strings[0] for action in args.http_flags if getattr(args, action.dest) != action.default]
    if http_only:
        # Without this, `flow-mcp serve --port 8000` would quietly serve stdio and look hung.
        _fail(f"{', '.join(http_only)} only apply to --transport http")
    with _maybe_sandbox(settings, args.sandbox) as settings:
        log.info(
            "server_starting",
            transport="stdio",
            version=__version__,
            base_url=settings.base_url,
            sandbox=args.sandbox,
            api_key_set=settings.api_key is not None,
        )
        _warn_if_no_key(settings)
        build_server(settings).run("stdio")
    return 0


def _warn_if_no_key(settings: Settings) -> None:
    # The server still starts (hosts list tools before anything is configured); the tools say what is missing.
    if settings.api_key is None:
        log.warning("api_key_missing", help="set FLOWHUNT_API_KEY; tools will say so when called")


def _serve_http(args: argparse.Namespace, settings: Settings) -> int:
    from flow_mcp.errors import ConfigurationError
    from flow_mcp.replicas import redis_missing

    with _loading():
        from flow_mcp.server.callers import SECRET_NEEDED
        from flow_mcp.server.http import TokenTable, is_loopback, serve_http

    try:
        token = settings.token.get_secret_value() if settings.token else None
        tokens = TokenTable.load(token=token, tokens_file=settings.tokens_file)
    except ConfigurationError as error:
        _fail(str(error))
    if args.no_auth and tokens:
        _fail("--no-auth conflicts with FLOW_MCP_TOKEN / FLOW_MCP_TOKENS_FILE: drop one or the other")
    if not tokens and not is_loopback(args.host):
        if not args.no_auth:
            _fail(
                f"refusing to serve {args.host} without authentication: set FLOW_MCP_TOKENS_FILE or FLOW_MCP_TOKEN "
                "(README: 'Serving a team over HTTP'), or pass --no-auth if a proxy in front authenticates clients"
            )
        log.warning("authentication_off", host=args.host, help="anyone who reaches this port can use the server")
    if args.flowhunt_key_from_client and settings.secret is None:
        _fail(SECRET_NEEDED)
    missing = redis_missing(settings)
    if missing is not None:
        _fail(missing)
    with _maybe_sandbox(settings, args.sandbox) as settings:
        if args.flowhunt_key_from_client:
            if settings.api_key is not None and not args.sandbox:
                log.warning("server_key_ignored", help="--flowhunt-key-from-client: clients send their own keys")
            settings = settings.model_copy(update={"api_key": None})
        else:
            _warn_if_no_key(settings)
        options = HttpOptions(
            host=args.host,
            port=args.port,
            path=args.path,
            stateless=args.stateless,
            allowed_hosts=tuple(args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
            key_from_client=args.flowhunt_key_from_client,
        )
        log.info(
            "server_starting",
            transport="http",
            version=__version__,
            base_url=settings.base_url,
            sandbox=args.sandbox,
            auth="bearer" if tokens else "none",
            clients=len(tokens.entries),
            stateless=args.stateless,
            flowhunt_key="from_client" if args.flowhunt_key_from_client else "server",
        )
        serve_http(settings, options, tokens)
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from flow_mcp.sandbox import SandboxConfig, run_sandbox

    configure_logging("info", "console")
    config = SandboxConfig.from_env()
    sys.stderr.write(
        f"FlowHunt sandbox on http://{args.host}:{args.port} (API key: {config.api_key}, "
        f"workspace: {config.workspace_id}). Point flow-mcp at it with "
        f"FLOWHUNT_BASE_URL=http://{args.host}:{args.port} FLOWHUNT_API_KEY={config.api_key}\n"
    )
    run_sandbox(host=args.host, port=args.port, config=config)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from flow_mcp.cli.demo import run_demo

    code: int = anyio.run(run_demo)
    return code


def _check(args: argparse.Namespace) -> int:
    from flow_mcp.cli.check import report, run_checks

    settings = _settings(args)
    _configure(settings, "error", "console")
    with _maybe_sandbox(settings, args.sandbox) as settings:
        steps = anyio.run(functools.partial(run_checks, settings, dry_run=args.dry_run))
    return report(steps, sys.stdout.write)


def _host_config(args: argparse.Namespace) -> int:
    from flow_mcp.cli.hostconfig import CONFIG_FILES, snippet

    sys.stdout.write(snippet(args.host, sandbox=args.sandbox) + "\n")
    sys.stderr.write(f"# {args.host}: {CONFIG_FILES[args.host]}\n")
    return 0


def _ask(args: argparse.Namespace) -> int:
    from flow_mcp.cli.turns import ask_once

    settings = _settings(args)
    # The terminal shows progress and the answer; log lines only for problems.
    _configure(settings, "warning", "console")
    with _maybe_sandbox(settings, args.sandbox) as settings:
        return anyio.run(ask_once, settings, args.message, args.session_id)


def _flows(args: argparse.Namespace) -> int:
    from flow_mcp.cli.turns import list_flows

    settings = _settings(args)
    _configure(settings, "warning", "console")
    with _maybe_sandbox(settings, args.sandbox) as settings:
        return anyio.run(list_flows, settings, args.query)


def _run(args: argparse.Namespace) -> int:
    from flow_mcp.cli.turns import run_flow

    settings = _settings(args)
    _configure(settings, "warning", "console")
    with _maybe_sandbox(settings, args.sandbox) as settings:
        return anyio.run(run_flow, settings, args.flow, args.message, args.session_id, dict(args.variables))
