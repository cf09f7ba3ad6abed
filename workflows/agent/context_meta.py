"""What a context budget keeps of each message: its size, its calls, and a tool result's stub.

Pure and deterministic (stdlib and ``keel.contracts`` only), computed by the transcript when
a message is appended (workflows/agent/transcript.py) — the only moment the workflow holds a
tool result's text: afterwards it lives in the content store and history holds a reference.

A stub is what the model reads in place of a trimmed tool result. Of a JSON object it keeps
the id-like fields (``id``, ``*_id``, ``*_ids``, values such as ``ORD-1042``), short key
scalars (status, amounts, names, dates) and, for a list of objects, those fields of its first
items; of text, a short head and the ids found in it. It always names the tool, says the
result was trimmed and how to get it back (call the tool again; the run keeps the whole
result: ``keel result --content <digest>``). It stays JSON when the result was JSON, so a
reader that parses results (the simulator's actor) still finds the ids.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keel.contracts import CallMeta, ChatMessage, MessageMeta
from keel.contracts.context_view import text_size

# Values that look like record ids: ORD-1042, CUS-1001, TCK-20, REF-7F3A2…
ID_PATTERN = re.compile(r"\b[A-Z][A-Z0-9]{1,7}-[0-9][0-9A-Z]{1,15}\b")
KEY_FIELDS = frozenset(
    {"status", "state", "amount", "total", "paid", "refunded", "refundable", "currency",
     "name", "title", "tier", "reason", "email", "count", "error", "outcome", "result"}
)  # fmt: skip
KEY_SUFFIXES = ("_id", "_at", "_count", "_status")
MAX_SCALAR_CHARS = 64  # a longer string is not a key field
MAX_LIST_ITEMS = 5  # items of a list of objects kept in a stub
MAX_IDS = 12  # ids kept from nested values or text
MAX_ARGS = 6  # key arguments kept of a call
TEXT_HEAD = 160  # characters of a text result kept in its stub
MAX_STUB_BYTES = 900  # a stub over this falls back to its scalars and ids
MIN_SAVING_BYTES = 64  # a result this close to its stub's size is never trimmed


def message_meta(
    message: ChatMessage, tool: str | None = None, digest: str | None = None
) -> MessageMeta:
    """The record of ``message`` (``tool``: the name of the tool a tool message answers;
    ``digest``: where its content is stored)."""
    size = text_size(message.content or "") + text_size(message.name or "")
    calls = []
    for call in message.tool_calls:
        size += text_size(call.name) + text_size(call.arguments)
        calls.append(CallMeta(id=call.id, name=call.name, args=key_arguments(call.arguments)))
    meta = MessageMeta(role=message.role, size=size, images=len(message.images), calls=calls)
    if message.role == "tool":
        content = message.content or ""
        meta.answers, meta.tool = message.tool_call_id, tool
        meta.ids = find_ids(content)
        stub = make_stub(tool or "a tool", content, digest)
        if stub is not None and (text_size(stub) + MIN_SAVING_BYTES < size or message.images):
            meta.stub = stub
    return meta


def key_arguments(arguments: str) -> dict[str, Any]:
    """The ids and short scalars of a call's JSON arguments (at most ``MAX_ARGS``)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    kept = {k: v for k, v in value.items() if _short_scalar(v)}
    return dict(list(kept.items())[:MAX_ARGS])


def find_ids(text: str) -> list[str]:
    """The id-like values of ``text``, first seen first (at most ``MAX_IDS``)."""
    found = dict.fromkeys(ID_PATTERN.findall(text))
    return list(found)[:MAX_IDS]


def make_stub(tool: str, content: str, digest: str | None) -> str | None:
    """The stub of a tool result (see the module docstring); None for an empty result."""
    if not content.strip():
        return None
    where = f" (or keel result --content {digest})" if digest else ""
    note = (
        f"{tool} result ({text_size(content):,} bytes) trimmed for the context budget; call"
        f" {tool} again for all of it{where}"
    )
    value = _json(content)
    if isinstance(value, dict):
        stub = {"trimmed": note, **_reduced(value, nested=True)}
        text = _dumps(stub)
        if text_size(text) <= MAX_STUB_BYTES:
            return text
        stub = {"trimmed": note, **_reduced(value, nested=False)}
    else:
        head = content[:TEXT_HEAD].replace("\n", " ")
        stub = {"trimmed": note, "head": head + ("…" if len(content) > TEXT_HEAD else "")}
    ids = find_ids(content)
    if ids:
        stub["ids"] = ids
    return _dumps(stub)


def _reduced(value: dict[str, Any], *, nested: bool) -> dict[str, Any]:
    """The id-like and key fields of an object; with ``nested``, its lists of objects and its
    objects reduced the same way one level down."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if _short_scalar(item) and _is_key(key, item):
            kept[key] = item
        elif key.endswith("_ids") and isinstance(item, list):
            kept[key] = [i for i in item if _short_scalar(i)][:MAX_IDS]
        elif nested and isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            kept[key] = [_reduced(i, nested=False) for i in item[:MAX_LIST_ITEMS]]
            if len(item) > MAX_LIST_ITEMS:
                kept[f"{key}_trimmed"] = f"{len(item) - MAX_LIST_ITEMS} more of {len(item)}"
        elif nested and isinstance(item, dict):
            kept[key] = _reduced(item, nested=False)
    return kept


def _is_key(key: str, value: Any) -> bool:
    if key == "id" or key in KEY_FIELDS or key.endswith(KEY_SUFFIXES):
        return True
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _short_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_SCALAR_CHARS
    return value is None or isinstance(value, bool | int | float)


def _json(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
