"""``python -m simulator``: serve the scenarios over HTTP until stopped.

Start-up errors (bad arguments, an invalid scenario file) print one line naming the culprit and
exit 2 without a traceback: the launcher and tests show that line to a person, who should be
able to fix the file from it alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import uvicorn

from keel.runtime.logs import configure_logging, get_logger
from simulator.actor import Actor, TierError, load_tiers
from simulator.app import Simulator, create_app
from simulator.play import DEFAULT_CACHE_MIN_TOKENS
from simulator.scenarios import BUNDLED_DIR, ScenarioError, load_scenarios

EXIT_USAGE = 2


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error on two lines; keep it to the error, one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"simulator: error: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


def _latency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"latency must be whole milliseconds, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"latency must be >= 0, got {value}")
    return value


def _cache_min(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be whole tokens, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m simulator",
        description="Keel's offline LLM: OpenAI chat completions and Anthropic Messages"
        " replaying scripted scenarios.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8100, help="port to bind (default 8100)")
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=BUNDLED_DIR,
        help="directory of *.toml scenarios (default: the bundled simulator/scenarios)",
    )
    parser.add_argument(
        "--default-latency-ms",
        type=_latency,
        default=0,
        help="latency of turns that do not set latency_ms (default 0)",
    )
    parser.add_argument(
        "--cache-min-tokens",
        type=_cache_min,
        default=DEFAULT_CACHE_MIN_TOKENS,
        help="shortest prefix the Anthropic wire caches"
        f" (default {DEFAULT_CACHE_MIN_TOKENS}, Anthropic's for Sonnet)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level of the server and the request log (default info)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        scenarios = load_scenarios(args.scenarios)
    except ScenarioError as exc:
        print(f"simulator: invalid scenarios: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        actor = Actor(load_tiers())
    except TierError as exc:
        print(f"simulator: invalid actor tiers: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # JSON lines on stderr like every Keel process (keel/logs.py), uvicorn's included.
    configure_logging("simulator", level=args.log_level)
    get_logger("simulator").info(
        "simulator ready",
        scenarios=len(scenarios),
        directory=str(args.scenarios),
        url=f"http://{args.host}:{args.port}",
    )
    app = create_app(
        Simulator(
            scenarios=scenarios,
            default_latency_ms=args.default_latency_ms,
            actor=actor,
            cache_min_tokens=args.cache_min_tokens,
        )
    )
    # A short graceful shutdown: a scripted hang must not hold SIGTERM up for its full length.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
