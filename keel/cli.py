"""``keel``: the small command line users touch.

  keel up | down            start / stop the local stack in the background (.keel/)
  keel demo                 run the demo scenario (starts what is missing, stops it after)
  keel run PROFILE TASK     start a run, show its progress live, print the result
  keel watch ID             attach to a run: its progress so far, then live, then the result
  keel status ID            the run's status query
  keel result ID            the run's result (waits for it); --content sha256:…: content it stored
  keel approvals            tool calls waiting for a human, across runs
  keel approve RUN APPROVAL           run the call as proposed
  keel reject RUN APPROVAL --reason   refuse it (the model is told why)
  keel edit RUN APPROVAL --arguments  run it with corrected arguments
      (each names the request's digest: --digest, else the CLI reads the request, prints
      what exactly it decides on stderr, and sends that digest; --identity-token or
      $KEEL_IDENTITY_TOKEN signs it, for runs that require identity)
  keel resolve RUN --confirm RESULT | --retry | --abort   a write whose answer was lost
  keel report [--since 24h]          latency, tokens, tools, cost, failures over finished runs
  keel eval DATASET [--config NAME[=SPEC]] [-k K]   run a task set, report success, pass^k, cost
  keel keys init | rotate-signing | rotate-codec [--dir]   the local key files
  keel token [--server NAME | --approver] ...  a token signed with the local key
  keel codec-server         decrypt payloads for `temporal --codec-endpoint` and the Temporal UI

User mistakes (bad input, unknown profile, unreachable server) print one readable line and
exit with 2; a run that ends without completing exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from pydantic import TypeAdapter

try:  # the runtime extra; the base install (`pip install keel`) serves the MCP servers only
    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError
except ModuleNotFoundError as missing:
    sys.exit(f"keel: {missing}: the keel command needs pip install 'keel[runtime]'")

from keel import codec_server, procs
from keel.approvals import bind, decide, edited_arguments, list_pending, pending_request
from keel.client import build_input, connect, resolve_call, run_status, start_run
from keel.content_command import add_arguments as add_content_arguments
from keel.content_command import run_content
from keel.contracts import (
    ApprovalRequest,
    Decision,
    ProgressEvent,
    Resolution,
    ResolveAction,
    RunResult,
)
from keel.contracts.errors import InputError, KeelError
from keel.demo import run_demo
from keel.eval.command import add_parser as add_eval_parser
from keel.eval.command import run_eval
from keel.keys_command import add_parser as add_keys_parser
from keel.keys_command import run_keys
from keel.render import (
    approval_lines,
    deciding_line,
    decision_line,
    progress_line,
    result_text,
    status_line,
    terminal_safe,
    unsigned_warning,
)
from keel.report import add_arguments as add_report_arguments
from keel.report import run_report
from keel.runtime.config import Settings
from keel.stack import COMPONENTS, default_stack
from keel.tokens import add_token_parser, run_token
from keel.watch import watch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Durable AI agents on Temporal.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the local stack in the background")
    sub.add_parser("down", help="stop what `keel up` started")
    sub.add_parser("demo", help="run the demo scenario end to end")
    run = sub.add_parser("run", help="start an agent run")
    run.add_argument("profile", help="profile name (a file in profiles/)")
    run.add_argument("task", help="the task, in plain language")
    run.add_argument("--id", dest="workflow_id", help="workflow id (default: generated)")
    run.add_argument("--principal", default="cli-user", help="who the run acts for")
    run.add_argument("--role", action="append", default=[], help="principal role (repeatable)")
    run.add_argument("--max-steps", type=int, help="lower the profile's step limit")
    run.add_argument("--max-tool-calls", type=int, help="lower the profile's tool-call limit")
    run.add_argument("--no-wait", action="store_true", help="start and print the id only")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    watch_cmd = sub.add_parser(
        "watch", help="show a run's progress (so far, then live), then its result"
    )
    watch_cmd.add_argument("workflow_id", metavar="RUN_ID", help="the run (workflow id)")
    watch_cmd.add_argument(
        "--json", action="store_true", help="JSON lines: each event, then the result"
    )
    for name in ("status", "result"):
        cmd = sub.add_parser(name, help=f"the run's {name}")
        cmd.add_argument("workflow_id")
        cmd.add_argument("--json", action="store_true")
    add_content_arguments(cmd)  # keel result RUN --content sha256:… [--out FILE]
    approvals = sub.add_parser("approvals", help="tool calls waiting for a human decision")
    approvals.add_argument("--json", action="store_true", help="print the requests as JSON")
    _decision_parsers(sub)
    _resolve_parser(sub)
    report = sub.add_parser("report", help="operations report over finished runs of a window")
    add_report_arguments(report)
    add_keys_parser(sub)
    add_eval_parser(sub)
    add_token_parser(sub)
    codec = sub.add_parser("codec-server", help="the codec endpoint of the Temporal CLI and UI")
    codec_server.add_arguments(codec)
    return parser


def _decision_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``approve`` / ``reject`` / ``edit`` share their arguments; only what each needs differs."""
    helps = {
        "approve": "run a pending tool call as proposed",
        "reject": "refuse a pending tool call (the model is told the reason)",
        "edit": "run a pending tool call with corrected arguments",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("workflow_id", metavar="RUN_ID", help="the run (workflow id)")
        cmd.add_argument("approval_id", metavar="APPROVAL_ID", help="from `keel approvals`")
        cmd.add_argument(
            "--digest",
            help="the request's digest from `keel approvals` (sha256:...): decide only if the"
            " request is still exactly that; default: read the request and print what is decided",
        )
        if name == "edit":
            cmd.add_argument(
                "--arguments", required=True, help="the corrected arguments, a JSON object"
            )
        cmd.add_argument(
            "--reason",
            required=name == "reject",
            help="why (required to reject: the model reads it)",
        )
        cmd.add_argument(
            "--by",
            help="who decides (default: the identity token's name, else $USER, else 'cli');"
            " recorded in the audit trail",
        )
        cmd.add_argument(
            "--role",
            dest="roles",
            metavar="ROLE",
            action="append",
            default=[],
            help="a role of the decider, checked against the approver roles (repeatable)",
        )
        cmd.add_argument(
            "--identity-token",
            metavar="TOKEN",
            default=os.environ.get("KEEL_IDENTITY_TOKEN") or None,
            help="the decider's identity token (JWT from the approvers' issuer; default:"
            " $KEEL_IDENTITY_TOKEN), required by runs with approvals.require_identity: the"
            " name and roles then come from it",
        )
        cmd.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _resolve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("resolve", help="a write whose answer was lost: confirm, retry, abort")
    cmd.add_argument("workflow_id", metavar="RUN_ID", help="the run (workflow id)")
    action = cmd.add_mutually_exclusive_group(required=True)
    action.add_argument("--confirm", metavar="RESULT", help="it took effect; the model sees RESULT")
    action.add_argument("--retry", action="store_true", help="send it once more (same key)")
    action.add_argument("--abort", action="store_true", help="end the run (halted)")
    cmd.add_argument("--key", help="the call's idempotency key (needed if several are lost)")
    cmd.add_argument("--by", default=os.environ.get("USER", "cli-user"), help="who resolves")
    cmd.add_argument("--reason", default="", help="why (kept in the run's progress)")
    cmd.add_argument("--json", action="store_true", help="print the outcome as JSON")


async def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    action: ResolveAction = (
        "confirm" if args.confirm is not None else ("retry" if args.retry else "abort")
    )
    try:
        resolution = Resolution(action=action, idempotency_key=args.key, result=args.confirm,
                                by=args.by, reason=args.reason)  # fmt: skip
    except ValueError:
        raise InputError(
            "--confirm needs the result the call had (what the model is told)"
        ) from None
    client = await connect(settings)
    outcome = await resolve_call(client, args.workflow_id, resolution)
    if args.json:
        print(outcome.model_dump_json(indent=2))
    else:
        key, run = outcome.idempotency_key, args.workflow_id
        print(terminal_safe(f"{outcome.action}: {outcome.tool} ({key}) in run {run}"))
    return 0


def _print_result(result: RunResult, as_json: bool) -> int:
    print(result.model_dump_json(indent=2) if as_json else result_text(result))
    return 0 if result.status == "completed" else 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    limits = {
        k: v
        for k, v in (("max_steps", args.max_steps), ("max_tool_calls", args.max_tool_calls))
        if v is not None
    }
    raw: dict[str, object] = {
        "profile": args.profile,
        "task": args.task,
        "principal": {"id": args.principal, "roles": args.role},
    }
    if limits:
        raw["limits"] = limits
    agent_input = build_input(raw, settings)
    client = await connect(settings)
    handle = await start_run(client, settings, agent_input, args.workflow_id)
    print(f"started {handle.id}", file=sys.stderr)
    if args.no_wait:
        print(handle.id)
        return 0

    # Progress goes to stderr, so stdout carries only the result (text, or one JSON document).
    result = await watch(client, handle.id, _progress_printer(args.json, sys.stderr))
    return _print_result(result, args.json)


def _progress_printer(as_json: bool, stream: TextIO) -> Callable[[ProgressEvent], None]:
    def show(event: ProgressEvent) -> None:
        print(event.model_dump_json() if as_json else "  " + progress_line(event), file=stream)
        stream.flush()

    return show


async def _watch(args: argparse.Namespace, settings: Settings) -> int:
    """Events so far, then live, then the result; with --json every line is a JSON object
    (the events, then the result)."""
    client = await connect(settings)
    result = await watch(client, args.workflow_id, _progress_printer(args.json, sys.stdout))
    if args.json:
        print(result.model_dump_json())
        return 0 if result.status == "completed" else 1
    print()
    return _print_result(result, False)


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect(settings)
    status = await run_status(client, args.workflow_id)
    print(status.model_dump_json(indent=2) if args.json else status_line(status))
    return 0


async def _result(args: argparse.Namespace, settings: Settings) -> int:
    if args.content is not None:
        return await run_content(args, settings)
    client = await connect(settings)
    handle = client.get_workflow_handle(args.workflow_id, result_type=RunResult)
    return _print_result(await handle.result(), args.json)


async def _approvals(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect(settings)
    requests = await list_pending(client)
    if args.json:
        print(TypeAdapter(list[ApprovalRequest]).dump_json(requests, indent=2).decode())
    else:
        print(approval_lines(requests))
        warning = unsigned_warning(requests)
        if warning:
            print(warning, file=sys.stderr)
    return 0


async def _decide(args: argparse.Namespace, settings: Settings) -> int:
    """Decide one request. The decision names the request's digest: ``--digest`` as given,
    else the request is read and what exactly is decided is printed (stderr) first."""
    arguments = edited_arguments(args.arguments) if args.command == "edit" else None
    decision = Decision(
        approval_id=args.approval_id,
        digest=args.digest,
        decision=args.command,
        arguments=arguments,
        reason=args.reason,
        # A signed decision takes its name from the token: only an explicit --by is a claim.
        by=args.by or (None if args.identity_token else os.environ.get("USER") or "cli"),
        roles=args.roles,
        identity_token=args.identity_token,
    )
    client = await connect(settings)
    if decision.digest is None:
        request = await pending_request(client, args.workflow_id, args.approval_id)
        print(deciding_line(request), file=sys.stderr)
        decision = bind(decision, request)
    outcome = await decide(client, args.workflow_id, decision)
    if args.json:
        print(outcome.model_dump_json(indent=2))
    else:
        print(decision_line(decision, args.workflow_id, outcome))
    return 0 if outcome.accepted and not outcome.run_ended else 1


def _stack_command(command: str) -> int:
    stack = default_stack()
    if command == "up":
        started = stack.up()
        c = stack.config
        print(f"started: {', '.join(started) or 'nothing (already running)'}")
        print(f"  Temporal    {c.temporal_address}  (UI http://{c.host}:{c.ui_port})")
        print(f"  simulator   {c.llm_base_url}")
        print(f"  MCP         {c.mcp_url('support_desk')}  {c.mcp_url('knowledge')}")
        print(f"  codec       {c.codec_url}  (temporal … --codec-endpoint {c.codec_url})")
        print(f"  logs        {c.home / 'logs'}")
        return 0
    if command == "down":
        stopped = stack.down()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if stack.running_pid("support_desk") is None:
        # A fresh support desk, so the demo's refund is valid every time it is re-run.
        db = stack.config.support_desk_db
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)
    with stack.running(COMPONENTS):
        return asyncio.run(run_demo(stack))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("up", "down", "demo"):
            return _stack_command(args.command)
        if args.command in ("keys", "eval"):
            return (run_keys if args.command == "keys" else run_eval)(args)
        if args.command == "codec-server":
            return codec_server.run_codec_server(args)
        settings = Settings.from_env()
        handler = {
            "run": _run,
            "watch": _watch,
            "status": _status,
            "result": _result,
            "approvals": _approvals,
            "approve": _decide,
            "reject": _decide,
            "edit": _decide,
            "resolve": _resolve,
            "report": run_report,
            "token": run_token,
        }[args.command]
        return asyncio.run(handler(args, settings))
    except KeelError as exc:
        print(terminal_safe(f"keel: {exc}", multiline=True), file=sys.stderr)
        return 2
    except procs.ProcessStartError as exc:
        print(f"keel: {exc}", file=sys.stderr)
        return 2
    except WorkflowFailureError as exc:
        cause = exc.cause
        message = f"keel: run failed: {getattr(cause, 'message', cause)}"
        print(terminal_safe(message, multiline=True), file=sys.stderr)
        return 1
    except RPCError as exc:
        print(terminal_safe(f"keel: Temporal refused the request: {exc.message}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    """Console entry point: flush, then skip interpreter teardown (known SDK exit crash)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
