"""``keel codec-server``: Temporal's remote codec protocol over Keel's payload codec.

The Temporal CLI (``temporal workflow show --codec-endpoint URL``) and the Temporal UI (its
"codec server" setting; ``make up`` starts the dev server with ``--ui-codec-endpoint``) send
the payloads they display here to be decrypted, and what a person types (a signal's input) to
be encrypted:

* ``POST …/decode`` and ``POST …/encode``: the body is a ``temporal.api.common.v1.Payloads``
  message in protobuf JSON (``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data":
  "<base64>"}]}``), ``Content-Type: application/json``; the answer is the same shape. Only
  the last part of the path counts (``/any/prefix/decode`` works). The ``X-Namespace`` header
  is accepted and ignored: one keyring serves every namespace. Bad JSON, another content
  type or a payload that does not decrypt is a 4xx with one line of text.
* ``GET /healthz``: readiness (``keel/stack.py`` waits for it).
* CORS for the UI: the allowed origins (``--cors-origin``) get ``Access-Control-Allow-Origin``
  with credentials, the methods ``GET, POST`` and the headers ``Authorization``,
  ``Content-Type`` and ``X-Namespace``; a preflight from any other origin is refused.

Anyone who can reach this endpoint can decrypt every payload it is sent: it has no
authentication of its own and binds loopback by default. Only the ``Host`` names it is meant
to be reached by are served (``--allowed-host``; loopback names by default), which keeps a
web page that rebinds its DNS name to 127.0.0.1 out. See docs/security.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from keel.contracts.errors import ConfigError, KeelError
from keel.runtime.codec import EncryptionCodec, KeyringFile
from keel.runtime.config import Settings

DEFAULT_PORT = 8205
DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_BODY_BYTES = 64 * 1024 * 1024
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Namespace")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument(
        "--keys",
        type=Path,
        help="the codec keyring (default: KEEL_CODEC_KEYS, else .keel/keys/codec-keys.json)",
    )
    parser.add_argument(
        "--cors-origin",
        dest="cors_origins",
        metavar="URL",
        action="append",
        help="an origin allowed to call from a browser, e.g. the Temporal UI (repeatable;"
        f" default {' and '.join(DEFAULT_ORIGINS)})",
    )
    parser.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        metavar="NAME",
        action="append",
        help="a Host header to serve, e.g. the service name behind a proxy (repeatable;"
        " default: loopback names and --host)",
    )


def build_app(
    codec: EncryptionCodec, origins: tuple[str, ...], allowed_hosts: tuple[str, ...]
) -> Starlette:
    """The ASGI app: /encode, /decode (any prefix), /healthz, CORS for ``origins``."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def convert(request: Request) -> Response:
        last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if last not in ("encode", "decode"):
            return PlainTextResponse("not found: POST …/encode or …/decode\n", status_code=404)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return PlainTextResponse("expected Content-Type: application/json\n", 415)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return PlainTextResponse(f"body over {MAX_BODY_BYTES} bytes\n", status_code=413)
        payloads = Payloads()
        try:
            json_format.Parse(body, payloads, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "invalid"
            return PlainTextResponse(f"not a Payloads message in JSON: {first}\n", 400)
        try:
            method = codec.encode if last == "encode" else codec.decode
            converted = Payloads(payloads=await method(payloads.payloads))
        except KeelError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=400)
        return Response(json_format.MessageToJson(converted), media_type="application/json")

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/{path:path}", convert, methods=["POST"]),
        ],
        middleware=[  # the first is the outermost: a foreign Host is refused before CORS
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_methods=["GET", "POST"],
                allow_headers=list(ALLOWED_HEADERS),
                allow_credentials=True,
                max_age=600,
            ),
        ],
    )


def serving_hosts(host: str, extra: list[str] | None) -> tuple[str, ...]:
    """The Host names to serve: the loopback names, the bound address unless it is a
    wildcard, and ``extra``."""
    names = [*LOOPBACK_HOSTS, *(extra or [])]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    return tuple(dict.fromkeys(names))


def run_codec_server(args: argparse.Namespace) -> int:
    """Serve until interrupted; a missing or bad keyring is one line and exit 2."""
    import uvicorn  # the server loop: imported only by the command that runs it

    keys: Path | None = args.keys or Settings.from_env().codec_keys
    if keys is None:
        raise ConfigError(
            "codec-server needs the codec keyring: --keys FILE or KEEL_CODEC_KEYS"
            " (`make up` creates .keel/keys/codec-keys.json)"
        )
    codec = EncryptionCodec(KeyringFile(keys))
    origins = tuple(args.cors_origins or DEFAULT_ORIGINS)
    app = build_app(codec, origins, serving_hosts(args.host, args.allowed_hosts))
    print(
        f"keel codec-server on http://{args.host}:{args.port} (keyring {keys};"
        f" CORS {', '.join(origins)})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
