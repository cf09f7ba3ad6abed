"""The model activity's conversation: assembled from the content store, stored as it grows.

A ``ChatRequest`` carries ``prior`` (the stored transcript node of everything sent before) and
``messages`` (what is new; a message may itself be a ``content_ref`` the worker stored, a tool
result or a model answer). :func:`assemble` stores the new messages' contents and their node
(keel/runtime/store/transcripts.py) *before* the provider is called — so a retry or a fallback
model stores nothing new — then reads the whole conversation back for the provider, each
message's content cut to ``model.max_message_bytes`` with a marker naming the stored full
content. Stored content that is missing or altered fails the call for good with one readable
line (``ContentMissing``, failure class ``content_missing``): asking again reads the same store.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from activities.context_view import apply_view
from keel.contracts import ChatMessage, ChatRequest, ContentRef, message_content_bytes
from keel.runtime.store.blobs import ContentMissing, StoreError
from keel.runtime.store.content import ContentCorrupt, ContentStore
from keel.runtime.store.transcripts import (
    entry,
    load_chain,
    resolve,
    store_content,
    store_node,
)

CONTENT_MISSING = "ContentMissing"
"""Stored content a request refers to is missing or is not what its digest says (not retried)."""
STORE_UNAVAILABLE = "StoreUnavailable"
"""The content store could not be read or written (retried)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Assembled:
    """The conversation the provider gets, and the node the request was stored as."""

    messages: list[ChatMessage]
    node: ContentRef | None


async def assemble(store: ContentStore | None, request: ChatRequest) -> Assembled:
    """The whole conversation of ``request`` (see the module docstring); without a store, the
    request's own messages, which must then hold no reference."""
    if store is None:
        if request.prior is not None or any(m.content_ref for m in request.messages):
            raise ApplicationError(
                "the request refers to stored conversation content, but this worker has no"
                " content store (KEEL_STORE)",
                type="ConfigError",
                non_retryable=True,
            )
        refs: list[ContentRef | None] = [None] * len(request.messages)
        cut = cut_messages(request.messages, refs, request.model.max_message_bytes)
        return Assembled(apply_view(cut, request.view), None)
    return await stored(_assemble(store, request), store)


async def _assemble(store: ContentStore, request: ChatRequest) -> Assembled:
    prior = await load_chain(store, request.prior)
    refs = [await store_content(store, message) for message in request.messages]
    node = request.prior
    if request.messages:
        entries = [entry(m, ref) for m, ref in zip(request.messages, refs, strict=True)]
        node = await store_node(store, request.prior, len(prior), entries)
    messages = await resolve(store, [*prior, *request.messages])
    all_refs: list[ContentRef | None] = [m.content_ref for m in prior]
    cut = cut_messages(messages, [*all_refs, *refs], request.model.max_message_bytes)
    return Assembled(apply_view(cut, request.view), node)


async def store_answer(store: ContentStore | None, content: str | None) -> ContentRef | None:
    """Store the model's answer as the workflow will hold it (an assistant message with this
    content): the reference it sends that message by. None without a store or an answer."""
    if store is None or not content:
        return None
    data = message_content_bytes(ChatMessage(role="assistant", content=content))
    return await stored(store.put(data), store)


async def stored(operation: Awaitable[T], store: ContentStore) -> T:
    """``operation`` on the store, its failures as the activity's typed errors."""
    try:
        return await operation
    except (ContentMissing, ContentCorrupt) as exc:
        raise ApplicationError(
            f"{exc}; the conversation cannot be assembled", type=CONTENT_MISSING,
            non_retryable=True,
        ) from None  # fmt: skip
    except StoreError as exc:
        raise ApplicationError(
            f"content store {store.describe()}: {exc}", type=STORE_UNAVAILABLE
        ) from None


def cut_messages(
    messages: list[ChatMessage], refs: list[ContentRef | None], limit: int
) -> list[ChatMessage]:
    """Every message whose content is over ``limit`` bytes, cut (see :func:`cut_content`)."""
    return [cut_message(m, ref, limit) for m, ref in zip(messages, refs, strict=True)]


def cut_message(message: ChatMessage, ref: ContentRef | None, limit: int) -> ChatMessage:
    content = message.content
    if content is None or len(content) <= limit // 4:  # at most 4 bytes a character
        return message
    cut = cut_content(content, limit, ref)
    return message if cut is content else message.model_copy(update={"content": cut})


def cut_content(content: str, limit: int, ref: ContentRef | None) -> str:
    """``content`` as the model reads it: whole when it has at most ``limit`` bytes, else its
    first ``limit`` bytes (cut at a UTF-8 boundary) and a marker saying so."""
    data = content.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return content
    kept = data[:limit].decode("utf-8", "ignore")
    where = f"full content stored as {ref.digest}" if ref is not None else "full content not kept"
    shown = len(kept.encode("utf-8", "surrogatepass"))
    return f"{kept}\n[message cut: showing {shown:,} of {len(data):,} bytes; {where}]"
