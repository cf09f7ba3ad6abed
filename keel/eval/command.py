"""``keel eval DATASET``: run a dataset's tasks against configurations and report.

By default the eval starts its own isolated stack (free ports, under a temporary directory
removed afterwards) whose support desk runs in per-run sandbox mode, so runs never see each
other's effects; ``--temporal ADDRESS`` uses a running stack instead (its desk must run with
``SUPPORT_DESK_SANDBOX=per-run`` for state checks and concurrent writes to mean anything).
``keel/cli.py`` only registers the command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from keel.client import connect
from keel.contracts.errors import InputError
from keel.eval.dataset import Config, Dataset, load_dataset, parse_config_option
from keel.eval.figures import all_figures
from keel.eval.html import render_html
from keel.eval.models import EvalReport, EvalRun
from keel.eval.report import render_json, render_text
from keel.eval.runner import Item, Runner, agent_input, plan, run_all
from keel.eval.state import StateReader
from keel.runtime.config import Settings
from keel.runtime.keys import TokenSigner
from keel.stack import Stack, StackConfig

SANDBOX_ENV = {"SUPPORT_DESK_SANDBOX": "per-run"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval`` on the ``keel`` command's subparsers."""
    cmd = sub.add_parser("eval", help="run a dataset of tasks and report success, pass^k, cost")
    cmd.add_argument("dataset", type=Path, help="the dataset (TOML), e.g. evals/support.toml")
    cmd.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME[=SPEC]",
        help="a configuration of the dataset, or NAME=profile:<p> / pipeline:<p>[@<profile>]"
        " (repeatable, compared side by side; default: the dataset's default_config, else all)",
    )
    cmd.add_argument("-k", type=int, default=1, help="trials per task (default 1)")
    cmd.add_argument("--concurrency", type=int, default=8, help="runs at a time (default 8)")
    cmd.add_argument("--tasks", help="only these task ids (comma-separated)")
    cmd.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    cmd.add_argument("--html", type=Path, metavar="FILE", help="also write the report as HTML")
    cmd.add_argument(
        "--timeout", type=float, default=300.0, help="seconds one run may take (default 300)"
    )
    cmd.add_argument(
        "--temporal",
        metavar="ADDRESS",
        help="use the running stack at ADDRESS (its settings from the environment) instead of"
        " starting an isolated one",
    )
    cmd.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")


def selected_configs(dataset: Dataset, options: list[str]) -> dict[str, Config]:
    if options:
        return dict(parse_config_option(option, dataset) for option in options)
    if dataset.default_config is not None:
        return {dataset.default_config: dataset.configs[dataset.default_config]}
    return dict(dataset.configs)


def selected_tasks(dataset: Dataset, option: str | None) -> Dataset:
    if not option:
        return dataset
    wanted = [part.strip() for part in option.split(",") if part.strip()]
    unknown = sorted(set(wanted) - {task.id for task in dataset.tasks})
    if unknown:
        raise InputError(f"--tasks: no such task(s) in {dataset.name}: {', '.join(unknown)}")
    return dataset.model_copy(update={"tasks": [t for t in dataset.tasks if t.id in wanted]})


def _check_numbers(args: argparse.Namespace) -> None:
    if args.k < 1:
        raise InputError(f"-k must be at least 1, got {args.k}")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be > 0, got {args.timeout}")


def run_eval(args: argparse.Namespace) -> int:
    """Carry out ``keel eval``; a bad dataset or option is an InputError (exit 2) before any
    process starts."""
    _check_numbers(args)
    dataset = selected_tasks(load_dataset(args.dataset), args.tasks)
    configs = selected_configs(dataset, args.config)
    items = plan(dataset, configs, args.k)
    if not items:
        raise InputError("no task of the dataset is covered by the selected config(s)")
    local = Settings.from_env()
    for item in items[: len(items) // args.k]:  # every (config, task) once: profiles load
        agent_input(item, local)
    if args.temporal:
        settings = Settings.from_env({**os.environ, "TEMPORAL_ADDRESS": args.temporal})
        urls = {name: t.url for name, t in settings.mcp_servers.items() if t.url}
        report = asyncio.run(evaluate(args, dataset, configs, items, settings, urls))
    else:
        report = _on_own_stack(args, dataset, configs, items)
    print(render_text(report))
    if args.json is not None:
        args.json.write_text(render_json(report) + "\n", encoding="utf-8")
    if args.html is not None:
        args.html.write_text(render_html(report), encoding="utf-8")
    return 0


def _on_own_stack(
    args: argparse.Namespace, dataset: Dataset, configs: dict[str, Config], items: list[Item]
) -> EvalReport:
    worker_env = {
        name: os.environ[name] for name in ("KEEL_PROFILES_PATH",) if os.environ.get(name)
    }
    with tempfile.TemporaryDirectory(prefix="keel-eval-") as home:
        config = StackConfig.isolated(
            Path(home), extra_worker_env=worker_env, component_env={"support_desk": SANDBOX_ENV}
        )
        stack = Stack(config)
        _say(args, f"starting an isolated stack under {home} (desk in per-run sandbox mode)")
        with stack.running():
            settings = Settings.from_env({**os.environ, **config.client_env()})
            urls = {name: config.mcp_url(name) for name in ("support_desk", "knowledge")}
            return asyncio.run(evaluate(args, dataset, configs, items, settings, urls))


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line, file=sys.stderr, flush=True)


async def evaluate(
    args: argparse.Namespace,
    dataset: Dataset,
    configs: dict[str, Config],
    items: list[Item],
    settings: Settings,
    urls: Mapping[str, str],
) -> EvalReport:
    """Run the plan on the stack ``settings`` reaches; the report of its runs."""
    started = time.monotonic()
    eval_id = uuid.uuid4().hex[:8]
    signer = (
        TokenSigner.from_file(settings.signing_key, settings.auth_issuer)
        if settings.signing_key is not None
        else None
    )
    done: list[EvalRun] = []

    def progress(run: EvalRun) -> None:
        done.append(run)
        verdict = "pass" if run.passed else f"FAIL [{run.failure}]"
        _say(args, f"  [{len(done)}/{len(items)}] {run.config} {run.task} #{run.trial}"
                   f" {verdict} {run.latency_seconds:.1f}s")  # fmt: skip

    client = await connect(settings)
    runner = Runner(client, settings, eval_id, StateReader(urls, signer), args.timeout, progress)
    _say(args, f"eval {eval_id}: {len(items)} runs, at most {args.concurrency} at a time")
    runs = await run_all(runner, items, args.concurrency)
    config_at = {name: i for i, name in enumerate(configs)}
    task_at = {task.id: i for i, task in enumerate(dataset.tasks)}
    runs.sort(key=lambda run: (config_at[run.config], task_at[run.task], run.trial))
    covered = {item.config_name for item in items}  # a config no selected task covers: left out
    specs = {name: config.spec for name, config in configs.items() if name in covered}
    return EvalReport(
        dataset=dataset.name,
        description=dataset.description,
        eval_id=eval_id,
        k=args.k,
        seconds=time.monotonic() - started,
        configs=all_figures(specs, runs, args.k),
        runs=runs,
    )
