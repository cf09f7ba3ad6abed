"""A run's conversation as the workflow holds it: stored messages by reference, new ones inline.

Workflow code (deterministic). The model activity (activities/llm.py) gets ``prior`` — the
stored transcript node of everything sent before — and ``pending``, the messages since; it
stores them and answers with the node of the whole request (``ChatResponse.transcript``),
which :meth:`Transcript.sent` makes the new ``prior``. Each message therefore crosses history
once more after it is made, not once per later step. A response without a node (a worker with
no content store, a history recorded before the store existed) keeps every message pending,
which is the old behaviour: the whole conversation in every request.

Content the worker has stored is sent by reference too: the model activity stores each answer
(``ChatResponse.content_ref``) and the MCP interceptor each tool result's view (the
``keel/view`` of its ``_meta``); :meth:`Transcript.offer` hands such a reference over, and
:meth:`Transcript.append` sends a message as ``content_ref`` when the digest of its own content
(``message_content_bytes``, computed here: hashing is deterministic) equals an offered one.
A message that differs (a refusal instead of a result, a human's stated result) stays inline,
which is correct either way. Offers live only until the next model call: they are not state.

The counts of :class:`ConversationState` cover every message, stored or pending, so the
budget's prompt estimate needs no store read. With a context budget (``[context]``,
workflows/agent/context.py) the state also keeps one small record per message
(``ConversationState.context``), made here at append time: a tool result's text is in workflow
memory only now, so its stub (workflows/agent/context_meta.py) is computed now too.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        ChatMessage,
        ContentRef,
        ContextState,
        ConversationState,
        MessageMeta,
        content_digest,
        message_content_bytes,
    )
    from workflows.agent.context_meta import message_meta


class Transcript:
    """The conversation of one run (see the module docstring)."""

    def __init__(self, state: ConversationState | None = None) -> None:
        self.state = state if state is not None else ConversationState()
        self._offers: dict[str, ContentRef] = {}

    def offer(self, ref: ContentRef | None) -> None:
        """Content the worker stored (an answer, a tool result's view): a message appended
        with exactly this content is sent by reference."""
        if ref is not None:
            self._offers[ref.digest] = ref

    def keep_context(self) -> bool:
        """Keep a record of every message for a context budget from now on; False when that
        is no longer possible (messages already sent by reference have no record)."""
        state = self.state
        if state.context is not None:
            return True
        if state.messages != len(state.pending) or any(m.content_ref for m in state.pending):
            return False
        state.context = ContextState(meta=[message_meta(m) for m in state.pending])
        return True

    def append(self, *messages: ChatMessage) -> None:
        for message in messages:
            if self.state.context is not None:
                self.state.context.meta.append(self._meta(message))
            self.state.pending.append(self._by_reference(message))
            self.state.messages += 1
            self.state.text_bytes += _size(message.content or "") + _size(message.name or "")
            for call in message.tool_calls:
                self.state.text_bytes += _size(call.name) + _size(call.arguments)
                self.state.tool_calls += 1
            self.state.images += len(message.images)

    @property
    def prior(self) -> ContentRef | None:
        return self.state.prior

    @property
    def pending(self) -> list[ChatMessage]:
        """The messages the next model request carries inline (after ``prior``)."""
        return self.state.pending

    def sent(self, node: ContentRef | None) -> None:
        """The model activity stored the request's conversation as ``node`` (None: it did not)."""
        self._offers.clear()
        if node is None:
            return
        self.state.prior = node
        self.state.pending = []

    def _meta(self, message: ChatMessage) -> MessageMeta:
        """The context budget's record of ``message``: a tool message's stub names its tool
        (from the call it answers) and where its whole content is stored."""
        if message.role != "tool":
            return message_meta(message)
        assert self.state.context is not None
        tool = next((call.name for meta in reversed(self.state.context.meta)
                     for call in meta.calls if call.id == message.tool_call_id), None)  # fmt: skip
        digest = content_digest(message_content_bytes(message))
        return message_meta(message, tool, digest)

    def _by_reference(self, message: ChatMessage) -> ChatMessage:
        """``message``, or its content by reference when the worker stored that content."""
        if not self._offers or message.content_ref is not None:
            return message
        ref = self._offers.get(content_digest(message_content_bytes(message)))
        if ref is None:
            return message
        return message.model_copy(update={"content": None, "images": [], "content_ref": ref})


def _size(text: str) -> int:
    # surrogatepass: a lone surrogate decoded from JSON must not crash the workflow (as in
    # workflows/agent/budget.py, whose estimate these counts feed).
    return len(text.encode("utf-8", "surrogatepass"))
