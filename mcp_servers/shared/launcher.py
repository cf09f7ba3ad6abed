"""The one way Keel's MCP servers are started: CLI parsing, transports, health check.

Both servers (support desk, knowledge base) are separate processes so that any MCP client
(Keel's worker, MCP Inspector, Claude Desktop over stdio) can use them. Keeping the launch
logic here means the two ``__main__`` modules only say *what* to serve, and the transport
details (path ``/mcp``, ``GET /healthz``, Host-header policy, exit codes) stay identical.

Exit codes: 0 after a clean shutdown, 2 for bad input (argparse errors, an unusable
database path, a malformed environment variable: a
:class:`~mcp_servers.shared.config.ServerConfigError`) with one ``error:`` line on stderr and
no traceback, so launchers and humans see the cause at a glance.

Over HTTP a server is an OAuth 2.1 resource server (:mod:`mcp_servers.shared.auth.resource`):
``--jwks`` / ``KEEL_AUTH_JWKS`` name the keys of trusted token issuers, and without them the
server refuses to start (exit 2) unless ``--insecure-no-auth`` says, with a warning, that it
checks no tokens. The factory receives the settings as ``args.resource_auth`` (None over
stdio or with ``--insecure-no-auth``) and must build a
:class:`~mcp_servers.shared.server.KeelMCPServer` with them.

Logs (the server's own, the MCP SDK's, uvicorn's) are JSON lines on stderr
(:mod:`mcp_servers.shared.logs`); stdout stays free for the stdio transport. Traces: off by
default, turned on by the standard ``OTEL_*`` variables (:mod:`mcp_servers.shared.tracing`);
SIGTERM stops the server like Ctrl-C, so batched spans are flushed before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_servers.shared.auth.grants import add_grant_arguments
from mcp_servers.shared.auth.resource import (
    INSECURE_WARNING,
    add_auth_arguments,
    insecure_requested,
    resource_auth,
)
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.logs import configure_logging, get_logger
from mcp_servers.shared.server import KeelMCPServer
from mcp_servers.shared.tracing import tracer_provider_from_env

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
READY_LOGGER = "keel.mcp_server"  # the logger of the "mcp server ready" line

ServerFactory = Callable[[argparse.Namespace], MCPServer]


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a single line (no usage dump) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def port_number(text: str) -> int:
    """argparse type for a TCP port: an integer in 1..65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1..65535, got {value}")
    return value


def build_parser(prog: str, description: str, default_port: int) -> argparse.ArgumentParser:
    """The shared options: ``--transport``, ``--host``, ``--port``, ``--allowed-host``."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.add_argument(
        "--transport",
        choices=["http", "stdio"],
        default="http",
        help="http = streamable HTTP at /mcp (default); stdio = JSON-RPC over stdin/stdout",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind for http (default 127.0.0.1; use 0.0.0.0 in containers)",
    )
    parser.add_argument(
        "--port", type=port_number, default=default_port, help=f"http port (default {default_port})"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT|:*]",
        help="extra Host header to accept (repeatable); turns DNS-rebinding protection on"
        " for non-loopback binds, e.g. --allowed-host support-desk:*",
    )
    add_grant_arguments(parser)
    add_auth_arguments(parser)
    return parser


def transport_security(host: str, extra_hosts: Sequence[str]) -> TransportSecuritySettings:
    """Host/Origin checks for the streamable HTTP endpoint.

    The choice, and why:

    * Bound to loopback (the default): DNS-rebinding protection ON, accepting Host
      ``127.0.0.1:*``, ``localhost:*``, ``[::1]:*`` and the same origins over http. That is
      the SDK's own default for loopback, made explicit here, and it is what lets
      ``http://127.0.0.1:PORT/mcp`` and ``http://localhost:PORT/mcp`` work from Keel and from
      MCP Inspector (its proxy sends ``Host: localhost:PORT``; its browser "direct" mode sends
      ``Origin: http://localhost:6274``), while a page served from some other origin cannot
      drive a local server through a rebound DNS name.
    * Bound to anything else (``0.0.0.0`` in docker-compose): protection OFF unless
      ``--allowed-host`` is given. Inside a compose network, peers reach the server by
      service/container name (``support-desk:8201``), which cannot be listed in advance;
      the network boundary (only published ports are reachable) is the protection there.
      With ``--allowed-host NAME:*`` protection is ON for loopback names plus those names.
    * Loopback bind plus ``--allowed-host``: loopback names plus the given ones.
    """
    if host not in LOOPBACK_HOSTS and not extra_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *extra_hosts]
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in extra_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def add_health_route(server: MCPServer) -> None:
    """``GET /healthz`` → ``{"status": "ok", "server": name}`` for launchers and compose."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "server": server.name})

    # Called, not used as a decorator: the SDK leaves the decorator's type unannotated.
    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)


async def _run_http(server: MCPServer, args: argparse.Namespace) -> None:
    if isinstance(server, KeelMCPServer):
        await server.check_scopes()
    add_health_route(server)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(args.host, args.allowed_host),
        host=args.host,
    )
    # log_config=None: uvicorn's records go to the root logger, rendered like every other line.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", log_config=None
    )
    display_host = f"[{args.host}]" if ":" in args.host else args.host
    get_logger(READY_LOGGER).info(
        "mcp server ready",
        server=server.name,
        transport="streamable-http",
        url=f"http://{display_host}:{args.port}{MCP_PATH}",
    )
    await uvicorn.Server(config).serve()


def _log_as_json(component: str) -> None:
    """JSON lines instead of the handler ``MCPServer()`` installs on the root logger
    (``logging.basicConfig`` with a RichHandler), so each record is written once, as JSON."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    configure_logging(component)


def fail(prog: str, message: str) -> NoReturn:
    """Print one error line to stderr and exit 2 (bad input, never a traceback)."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def serve(
    server: MCPServer | ServerFactory,
    argv: Sequence[str] | None,
    default_port: int,
    *,
    prog: str | None = None,
    description: str = "Keel MCP server",
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse ``argv`` and run ``server`` until interrupted; returns the process exit code.

    ``server`` may be a factory taking the parsed arguments, for servers whose construction
    depends on extra options added by ``add_arguments`` (the support desk's ``--db``). A
    factory signals bad input by raising :class:`ServerConfigError`.
    """
    name = prog or (server.name if isinstance(server, MCPServer) else "mcp-server")
    parser = build_parser(name, description, default_port)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    instance = _build(name, server, args)
    tracing = _tracing(name, instance.name)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM ends the server like Ctrl-C, so the ``finally`` below runs. Left at the
        # default, uvicorn re-raises it after its graceful shutdown and the process dies
        # by the signal before batched spans are flushed.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.transport == "stdio":
            asyncio.run(instance.run_stdio_async())
        else:
            asyncio.run(_run_http(instance, args))
    except KeyboardInterrupt:
        pass
    except ServerConfigError as exc:
        fail(name, str(exc))
    finally:
        if tracing is not None:
            tracing.shutdown()  # flush the spans still batched
    return 0


def _build(name: str, server: MCPServer | ServerFactory, args: argparse.Namespace) -> MCPServer:
    """The server for ``args``, given its access-token settings (``args.resource_auth``);
    logging set up, and the ``--insecure-no-auth`` warning printed and logged."""
    try:
        insecure = args.transport == "http" and insecure_requested(args)
        args.resource_auth = None
        if args.transport == "http" and not insecure:
            args.resource_auth = resource_auth(args)
        instance = server if isinstance(server, MCPServer) else server(args)
    except ServerConfigError as exc:
        fail(name, str(exc))
    protected = isinstance(instance, KeelMCPServer) and instance.resource_auth is not None
    if args.resource_auth is not None and not protected:
        fail(name, "this server cannot check access tokens; run it with --insecure-no-auth")
    _log_as_json(instance.name)
    if insecure:
        print(f"{name}: warning: {INSECURE_WARNING}", file=sys.stderr, flush=True)
        get_logger(READY_LOGGER).warning("no access tokens checked", reason=INSECURE_WARNING)
    return instance


def _tracing(prog: str, server_name: str) -> TracerProvider | None:
    """Install the tracer provider the ``OTEL_*`` variables ask for (none by default) as the
    process's global one, which the MCP SDK's server middleware records to. A bad value
    exits 2 with one line, like any other bad input."""
    try:
        provider = tracer_provider_from_env(f"keel-{server_name}", console=sys.stderr)
    except ServerConfigError as exc:
        fail(prog, str(exc))
    if provider is not None:
        otel_trace.set_tracer_provider(provider)
    return provider
