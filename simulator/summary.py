"""Keel's context-budget summaries as the simulator sees them (docs/operations.md, "Context
budgets" / "The simulator").

Two conventions of Keel's wire (keel/contracts/context_view.py; the simulator imports nothing
of Keel, so they are restated here):

- a summary request's system message starts with ``[keel:summarize]`` and its user message
  renders the messages to summarize (activities/context_view.py ``render``): a
  ``--- message N: <role> ---`` header per message (``tool result of <tool> (call <id>)`` for
  a tool message), its content, and a ``call <id>: <tool> <arguments JSON>`` line per call;
- a summary message (a user message) starts with ``[keel:summary turns=N]``: it replaces N
  assistant messages, which the scenarios still count when they pick the turn to play.

Any simulated model answers a summary request with :func:`summarize`: a deterministic text
that names the range and, per tool call, one ``sim-call {json}`` line (turn, id, tool,
arguments, the result as the request showed it: a JSON object as JSON, a stub without its
``trimmed`` note, text cut to ``RESULT_CHARS``), as many lines as the request's
``max_tokens`` allows at four characters a token (a real model stops at its cap too; the
lines left out are forgotten). The actor reads those lines back
(simulator/actor/knowledge.py), so it remembers what it did before the summary; lines of an
earlier summary inside the range are carried over as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

from simulator.wire import ChatRequest, text_of

SUMMARIZE_MARKER = "[keel:summarize]"
SUMMARY_RE = re.compile(r"^\[keel:summary turns=(\d+)\]")
HEADER_RE = re.compile(r"^--- message (\d+): (.+) ---$")
TOOL_RE = re.compile(r"^tool result of (.+) \(call (.+)\)$")
CALL_RE = re.compile(r"^call (\S+): (\S+) (.*)$")
SIM_CALL = "sim-call "
RESULT_CHARS = 1200
SAID_CHARS = 100


def replaced_turns(chat: ChatRequest) -> int:
    """Assistant messages that summary messages of ``chat`` stand for."""
    total = 0
    for message in chat.messages:
        if message.role == "user":
            match = SUMMARY_RE.match(text_of(message.content))
            total += int(match.group(1)) if match else 0
    return total


def is_summary_request(chat: ChatRequest) -> bool:
    first = chat.messages[0]
    return first.role == "system" and text_of(first.content).startswith(SUMMARIZE_MARKER)


def summarize(chat: ChatRequest) -> tuple[str, int]:
    """The summary of a summary request, and the index of the last message it covers."""
    blocks = _blocks(text_of(chat.messages[-1].content))
    carried = [line for _, what, body in blocks if what == "user" and SUMMARY_RE.match(body)
               for line in body.splitlines() if line.startswith(SIM_CALL)]  # fmt: skip
    turn = max((int(json.loads(line[len(SIM_CALL):]).get("turn", 0)) for line in carried),
               default=0)  # fmt: skip
    results = {m.group(2): body for _, what, body in blocks if (m := TOOL_RE.match(what))}
    lines, said = list(carried), []
    for _, what, body in blocks:
        if what != "assistant":
            continue
        turn += 1
        prose = [line for line in body.splitlines() if line.strip() and not CALL_RE.match(line)]
        said += [prose[0].strip()[:SAID_CHARS]] if prose else []
        calls = [m for line in body.splitlines() if (m := CALL_RE.match(line))]
        lines += [SIM_CALL + _call_line(turn, call, results) for call in calls]
    first, last = (blocks[0][0], blocks[-1][0]) if blocks else (0, 0)
    head = f"Simulated summary of messages {first}-{last}: {{kept}} of {len(lines)} tool calls."
    if said:
        head += " The assistant said: " + " / ".join(said)[: SAID_CHARS * 3]
    kept = _within(head, lines, chat.max_completion_tokens or chat.max_tokens)
    return "\n".join([head.format(kept=len(kept)), *kept]), last


def _within(head: str, lines: list[str], tokens: int | None) -> list[str]:
    """As many whole ``lines``, first first, as ``tokens`` (four characters each) allow
    after ``head``."""
    kept: list[str] = []
    used = len(head)
    for line in lines:
        if tokens is not None and used + 1 + len(line) > tokens * 4:
            break
        kept.append(line)
        used += 1 + len(line)
    return kept


def _call_line(turn: int, call: re.Match[str], results: dict[str, str]) -> str:
    try:
        arguments: Any = json.loads(call.group(3))
    except ValueError:
        arguments = call.group(3)
    result = results.get(call.group(1), "")
    try:
        value = json.loads(result)
    except ValueError:
        value = None
    shown: Any = result[:RESULT_CHARS]
    if isinstance(value, dict):  # JSON as JSON (no escaping); a stub without its note
        value.pop("trimmed", None)
        shown = value
    entry = {"turn": turn, "id": call.group(1), "name": call.group(2),
             "arguments": arguments, "result": shown}  # fmt: skip
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _blocks(text: str) -> list[tuple[int, str, str]]:
    """(index, what, body) of each rendered message."""
    blocks: list[tuple[int, str, list[str]]] = []
    for line in text.splitlines():
        header = HEADER_RE.match(line)
        if header:
            blocks.append((int(header.group(1)), header.group(2), []))
        elif blocks:
            blocks[-1][2].append(line)
    return [(index, what, "\n".join(body)) for index, what, body in blocks]


def summary_calls(content: str) -> list[dict[str, Any]]:
    """The ``sim-call`` entries of a summary message (what the actor remembers of it)."""
    if not SUMMARY_RE.match(content):
        return []
    entries = []
    for line in content.splitlines():
        if line.startswith(SIM_CALL):
            try:
                entry = json.loads(line[len(SIM_CALL) :])
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries
