"""A run's conversation in the content store: a chain of small, immutable transcript nodes.

Each model call stores one node holding the messages that are new in its request, and a
reference to the node before it (``parent``)::

    {"v": 1, "parent": "sha256:…" | null, "count": <messages in the chain>, "messages": [entry…]}

An entry is the ``ChatMessage`` dump with ``content`` and ``images`` replaced by
``content_ref``, the reference of ``message_content_bytes(message)``: the text itself is stored
once, as its own blob, whichever node, run or retry refers to it. A node is therefore small
(a few hundred bytes per message), and the store grows by what is new at each step, never by
the whole conversation. Nodes and contents are addressed by digest, so storing them again (a
retried activity, a fallback model, a replayed run) writes nothing new.

Used by the model activity (activities/transcripts.py), which assembles the provider's
request from the chain; any reader holding the store can rebuild a conversation from its node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from keel.contracts import ChatMessage, ContentRef, ImagePart, message_content_bytes
from keel.runtime.store.content import ContentCorrupt, ContentStore

NODE_VERSION = 1
# Contents read at once while a conversation is assembled (a cold cache, an S3 store).
CONCURRENT_READS = 16


class TranscriptCorrupt(ContentCorrupt):
    """A stored transcript node or message content that does not have the agreed shape."""


def entry(message: ChatMessage, ref: ContentRef) -> dict[str, Any]:
    """``message`` as a node stores it: everything but its content, which ``ref`` names."""
    dumped = message.model_dump(mode="json", exclude={"content", "images", "content_ref"})
    return {**dumped, "content_ref": ref.model_dump(mode="json")}


async def store_content(store: ContentStore, message: ChatMessage) -> ContentRef:
    """The reference of ``message``'s content, stored first unless it is already a reference."""
    if message.content_ref is not None:
        return message.content_ref
    return await store.put(message_content_bytes(message))


async def store_node(
    store: ContentStore, parent: ContentRef | None, parent_count: int, entries: list[dict[str, Any]]
) -> ContentRef:
    """Store the node of ``entries`` after ``parent`` (a chain of ``parent_count`` messages)."""
    node = {
        "v": NODE_VERSION,
        "parent": parent.digest if parent is not None else None,
        "count": parent_count + len(entries),
        "messages": entries,
    }
    return await store.put_json(node)


async def load_chain(store: ContentStore, node: ContentRef | None) -> list[ChatMessage]:
    """The messages of the chain ending at ``node``, oldest first, each with its
    ``content_ref`` (contents not read: :func:`resolve`)."""
    if node is None:
        return []
    nodes: list[tuple[str, dict[str, Any]]] = []
    digest: str | None = node.digest
    while digest is not None:
        value = _node(await store.get_json(digest), digest)
        nodes.append((digest, value))
        digest = value["parent"]
    messages = [
        _message(item, digest) for digest, value in reversed(nodes) for item in value["messages"]
    ]
    if len(messages) != nodes[0][1]["count"]:
        raise TranscriptCorrupt(
            f"transcript node {node.digest} counts {nodes[0][1]['count']} messages, its chain"
            f" holds {len(messages)}"
        )
    return messages


async def resolve(store: ContentStore, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with every ``content_ref`` replaced by the stored content and images."""
    gate = asyncio.Semaphore(CONCURRENT_READS)

    async def one(message: ChatMessage) -> ChatMessage:
        ref = message.content_ref
        if ref is None:
            return message
        async with gate:
            value = await store.get_json(ref)
        content, images = _content(value, ref.digest)
        return message.model_copy(update={"content": content, "images": images,
                                          "content_ref": None})  # fmt: skip

    return list(await asyncio.gather(*(one(m) for m in messages)))


def _node(value: Any, digest: str) -> dict[str, Any]:
    if (
        not isinstance(value, dict)
        or value.get("v") != NODE_VERSION
        or not isinstance(value.get("messages"), list)
        or not isinstance(value.get("count"), int)
        or not (value.get("parent") is None or isinstance(value.get("parent"), str))
    ):
        raise TranscriptCorrupt(f"stored content {digest} is not a transcript node")
    return value


def _message(item: Any, digest: str) -> ChatMessage:
    try:
        message = ChatMessage.model_validate(item)
    except ValidationError:
        message = None
    if message is None or message.content_ref is None:
        raise TranscriptCorrupt(f"transcript node {digest} holds a message that is not an entry")
    return message


def _content(value: Any, digest: str) -> tuple[str | None, list[ImagePart]]:
    content = value.get("content") if isinstance(value, dict) else None
    images = value.get("images") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not (content is None or isinstance(content, str)):
        raise TranscriptCorrupt(f"stored content {digest} is not a message's content")
    try:
        return content, [ImagePart.model_validate(image) for image in images or []]
    except (ValidationError, TypeError):
        raise TranscriptCorrupt(f"stored content {digest} holds invalid images") from None
