"""``keel report``: the operations report over finished runs of a time window."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from keel.client import connect
from keel.contracts.errors import InputError
from keel.report.collect import collect, parse_time, visibility_query
from keel.report.figures import build_report
from keel.report.html import render_html
from keel.report.models import Report
from keel.report.tables import render_text
from keel.runtime.config import Settings

DEFAULT_LIMIT = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` subcommand's options."""
    parser.add_argument(
        "--since", default="24h", help="start of the window: 30m, 24h, 7d, 2w or ISO-8601"
    )
    parser.add_argument("--until", default="now", help="end of the window (default: now)")
    parser.add_argument("--profile", help="only runs of this profile")
    parser.add_argument(
        "--query",
        help="extra Temporal visibility filter, ANDed (e.g. \"WorkflowId STARTS_WITH 'x'\")",
    )
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"read at most N runs ({DEFAULT_LIMIT})"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--html", metavar="FILE", help="also write an HTML page with charts")


def window(since: str, until: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window's bounds in UTC; checked before anything is contacted."""
    now = now or datetime.now(UTC)
    start, end = parse_time(since, "--since", now), parse_time(until, "--until", now)
    if start >= end:
        raise InputError(
            f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) must be before --until"
            f" ({end:%Y-%m-%dT%H:%M:%SZ})"
        )
    return start, end


async def make_report(
    settings: Settings,
    *,
    since: datetime,
    until: datetime,
    profile: str | None = None,
    query: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Report:
    """List, read and compute: the report over the finished runs of the window."""
    client = await connect(settings)
    full_query = visibility_query(since, until, query)
    collected = await collect(client, full_query, limit=limit, profile=profile)
    return build_report(
        collected.runs,
        since=since,
        until=until,
        query=full_query,
        profile=profile,
        truncated=collected.truncated,
        unreadable=collected.unreadable,
    )


async def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """CLI handler: text tables, ``--json``, and ``--html FILE``; exit 0 also for no runs."""
    since, until = window(args.since, args.until)
    if args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    html_path = Path(args.html) if args.html else None
    if html_path is not None and not html_path.parent.is_dir():
        raise InputError(f"--html {args.html}: directory {html_path.parent} does not exist")
    report = await make_report(
        settings,
        since=since,
        until=until,
        profile=args.profile,
        query=args.query,
        limit=args.limit,
    )
    print(report.model_dump_json(indent=2) if args.json else render_text(report))
    if html_path is not None:
        try:
            html_path.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--html {args.html}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {html_path}", file=sys.stderr)
    return 0
