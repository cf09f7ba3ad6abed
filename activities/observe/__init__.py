"""What each model call and each tool call leaves behind: one log event, one span, metrics.

Activities are the only place where a call's latency, attempt, usage and outcome are all
known, and an activity attempt runs exactly once (a workflow replay never re-runs it), so
recording here never duplicates: every *attempt* is one ``model.call`` / ``tool.call`` event
and one span, with its attempt number.

* ``model.call`` event and a ``chat {model}`` span (kind CLIENT) with the GenAI semantic
  conventions' attributes (``gen_ai.*``, ``server.*``, ``error.type``) plus ``keel.*``;
  metrics ``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``,
  ``keel.llm.cost``, ``keel.retries`` (``model_calls``).
* ``tool.call`` event and an ``execute_tool {tool}`` span (kind CLIENT) with the GenAI
  execute-tool and MCP client attributes (``mcp.method.name`` …); metrics
  ``keel.tool.calls``, ``keel.tool.duration``, ``keel.retries`` (``tool_calls``).

The instruments and the span helpers both share are in ``instruments`` and ``spans``. Names
and fields are listed in docs/operations.md.
"""

from activities.observe.instruments import Instruments
from activities.observe.model_calls import ModelCall, ModelCallObserver, provider_name
from activities.observe.spans import error_type
from activities.observe.tool_calls import (
    ToolCall,
    ToolCallObserver,
    parse_idempotency_key,
    result_summary,
)

__all__ = [
    "Instruments",
    "ModelCall",
    "ModelCallObserver",
    "ToolCall",
    "ToolCallObserver",
    "error_type",
    "parse_idempotency_key",
    "provider_name",
    "result_summary",
]
