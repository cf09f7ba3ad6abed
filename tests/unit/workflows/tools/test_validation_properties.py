"""Property tests of the schema layer against the real support-desk schemas and server.

(a) arguments generated from a tool's own input schema always pass ``check_schema``;
(b) ``refund_order`` amounts: every 2-decimal amount in (0, 10000] passes, any third decimal
    fails (jsonschema's float ``multipleOf`` gets 0.07 wrong; Keel's must not);
(c) a valid argument dict broken on purpose (required key dropped, a value of the wrong
    type, a newline after an anchored pattern) is refused by Keel, and for read-only tools
    the real server refuses it too; an unknown key, which these schemas allow, is accepted
    by both. So Keel's verdict agrees with the server's own validation.

The server is the real one, built in this process (``desk`` in conftest.py) and reached
through the MCP SDK's in-memory client: the same schemas and the same server-side validation
as over HTTP, without a process.

hypothesis-jsonschema 0.23.1 builds *object* strategies on a Hypothesis internal that newer
Hypothesis versions removed (``many.more``), so objects are composed here from
``from_schema`` strategies of each property, which is what it would do for these flat
schemas.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer

from activities.tool_view import result_text
from keel.contracts import ServerSettings, ToolCall, ToolSpec
from tests.helpers import DESK_TOOLS
from workflows.tools.catalog import build_catalog
from workflows.tools.validation import PreparedCall, Rejection, Validator

TOOLS = list(DESK_TOOLS)
READ_ONLY = ["search_customers", "get_customer", "list_orders", "get_order"]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OBJECT_KEYWORDS = {"type", "properties", "required", "title", "description", "additionalProperties"}
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)


@pytest_asyncio.fixture(scope="module")
async def tools(desk: MCPServer) -> AsyncIterator[dict[str, ToolSpec]]:
    """The real tool specs, listed once per module."""
    async with Client(desk) as client:
        listed = await client.list_tools()
    catalog = build_catalog([ServerSettings(name="support_desk")], {"support_desk": listed})
    assert sorted(t.name for t in catalog) == sorted(TOOLS)
    yield {tool.name: tool for tool in catalog}


@pytest.fixture(scope="module")
def validator(tools: dict[str, ToolSpec]) -> Validator:
    return Validator(list(tools.values()))


def check(validator: Validator, tool: str, arguments: dict[str, Any] | str) -> Any:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return validator.check_schema(ToolCall(id="p", name=tool, arguments=text))


# ---- strategies ------------------------------------------------------------------------

_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {}


def arguments_for(tool: ToolSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Valid arguments for ``tool``: each property from its own schema, plus allowed extras."""
    if tool.name in _STRATEGIES:
        return _STRATEGIES[tool.name]
    schema = tool.input_schema
    assert schema.get("type") == "object" and set(schema) <= OBJECT_KEYWORDS, schema
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    base = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in properties.items() if k in required},
        optional={k: from_schema(v) for k, v in properties.items() if k not in required},
    )
    additional = schema.get("additionalProperties", True)
    if additional is not False:
        values = SCALARS if additional is True else from_schema(additional)
        names = st.text(min_size=1, max_size=8).filter(lambda k: k not in properties)
        extras = st.dictionaries(names, values, max_size=2)
        base = st.builds(lambda a, b: {**b, **a}, base, extras)
    strategy = base.map(lambda args: snap_to_multiples(args, properties))
    _STRATEGIES[tool.name] = strategy
    return strategy


def snap_to_multiples(arguments: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """hypothesis-jsonschema draws ``multipleOf`` numbers as ``k * 0.01`` in binary floats
    (5.2700000000000005): as JSON that is a 16-decimal number, which Keel refuses on purpose.
    Round to the multiple's decimals, i.e. the value a JSON literal would carry."""
    for key, sub in properties.items():
        step = sub.get("multipleOf")
        if step is not None and isinstance(arguments.get(key), float):
            decimals = -Decimal(str(step)).as_tuple().exponent  # type: ignore[operator]
            arguments[key] = round(arguments[key], max(decimals, 0))
    return arguments


def accepted_types(schema: dict[str, Any]) -> set[str]:
    """JSON types a property schema accepts (``integer`` implied by ``number``)."""
    types: set[str] = set()
    for branch in schema.get("anyOf", [schema]):
        kind = branch.get("type")
        types.update(kind if isinstance(kind, list) else [kind] if kind else [])
    return types | ({"integer"} if "number" in types else set())


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def wrong_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a JSON type the property does not accept, and that the server's pydantic
    (lax mode) does not coerce either: it turns "5" and true into integers, so those are
    left out here and pinned separately in ``test_keel_is_stricter_than_lax_coercion``."""
    types = accepted_types(schema)
    options: list[st.SearchStrategy[Any]] = [
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
    ]
    if "null" not in types:
        options.append(st.none())
    if "string" not in types:
        options.append(st.text(min_size=1, max_size=6).filter(lambda s: not _is_float_text(s)))
    if not types & {"integer", "number"}:
        options += [st.integers(), st.floats(allow_nan=False, allow_infinity=False)]
        if "boolean" not in types:
            options.append(st.booleans())
    elif "number" not in types:
        options.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f % 1))
    return st.one_of(options)


@st.composite
def broken_arguments(draw: st.DrawFn, tool: ToolSpec) -> tuple[str, str, dict[str, Any]]:
    """(mutation, field, arguments): valid arguments with exactly one thing made invalid."""
    arguments = dict(draw(arguments_for(tool)))
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    mutations = ["wrong_type"]
    if tool.input_schema.get("required"):
        mutations.append("drop_required")
    anchored = [k for k, v in properties.items() if "pattern" in v and k in arguments]
    if anchored:
        mutations.append("newline")
    if tool.input_schema.get("additionalProperties") is False:
        mutations.append("unknown_key")
    mutation = draw(st.sampled_from(mutations))
    if mutation == "drop_required":
        key = draw(st.sampled_from(tool.input_schema["required"]))
        del arguments[key]
    elif mutation == "newline":
        key = draw(st.sampled_from(anchored))
        arguments[key] += "\n"
    elif mutation == "unknown_key":
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in properties))
        arguments[key] = draw(SCALARS)
    else:
        key = draw(st.sampled_from(sorted(properties)))
        arguments[key] = draw(wrong_values(properties[key]))
    return mutation, key, arguments


async def server_refuses(desk: MCPServer, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
    """Did the server refuse the arguments as invalid (not: a domain answer like 'not found')?"""
    try:
        async with Client(desk) as client:
            result = await client.call_tool(tool, arguments)
    except MCPError as exc:
        return True, str(exc)
    text = result_text(result)
    return bool(result.is_error) and "validation error" in text, text


# ---- (a) generated valid arguments pass ------------------------------------------------


@pytest.mark.parametrize("name", TOOLS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_arguments_from_the_schema_pass(
    validator: Validator, tools: dict[str, ToolSpec], name: str, data: st.DataObject
) -> None:
    arguments = data.draw(arguments_for(tools[name]), label="arguments")
    outcome = check(validator, name, arguments)
    assert isinstance(outcome, PreparedCall), outcome
    assert outcome.arguments == arguments


# ---- (b) refund amounts ----------------------------------------------------------------


def money(cents: int, as_float: bool) -> str:
    """An amount as the JSON text a model sends: a float (0.07) or a literal (12.10)."""
    return json.dumps(cents / 100) if as_float else f"{cents // 100}.{cents % 100:02d}"


@SETTINGS
@given(cents=st.integers(1, 1_000_000), as_float=st.booleans())
def test_two_decimal_amounts_pass(validator: Validator, cents: int, as_float: bool) -> None:
    text = f'{{"order_id": "ORD-1042", "amount": {money(cents, as_float)}, "reason": "damaged"}}'
    assert isinstance(check(validator, "refund_order", text), PreparedCall), text


@SETTINGS
@given(mills=st.integers(1, 10_000_000).filter(lambda m: m % 10 != 0), as_float=st.booleans())
def test_a_third_decimal_fails(validator: Validator, mills: int, as_float: bool) -> None:
    amount = json.dumps(mills / 1000) if as_float else f"{mills // 1000}.{mills % 1000:03d}"
    text = f'{{"order_id": "ORD-1042", "amount": {amount}, "reason": "damaged"}}'
    outcome = check(validator, "refund_order", text)
    assert isinstance(outcome, Rejection), text
    assert [(i.field, i.keyword) for i in outcome.issues] == [("amount", "multipleOf")]


# ---- (c) broken arguments: Keel and the server agree -----------------------------------


@pytest.mark.parametrize("name", TOOLS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
async def test_broken_arguments_are_refused_like_the_server_does(
    validator: Validator, tools: dict[str, ToolSpec], desk: MCPServer, name: str, data: Any
) -> None:
    mutation, key, arguments = data.draw(broken_arguments(tools[name]), label="broken")
    outcome = check(validator, name, arguments)
    assert isinstance(outcome, Rejection), (mutation, arguments)
    assert outcome.kind == "schema"
    assert key in {issue.field for issue in outcome.issues}, outcome.issues
    if name in READ_ONLY:
        refused, said = await server_refuses(desk, name, arguments)
        assert refused, f"Keel refused {mutation} {arguments}, the server answered: {said}"


@pytest.mark.parametrize("name", READ_ONLY)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
async def test_unknown_keys_are_accepted_by_both(
    validator: Validator, tools: dict[str, ToolSpec], desk: MCPServer, name: str, data: Any
) -> None:
    tool = tools[name]
    assert tool.input_schema.get("additionalProperties", True) is not False
    arguments = dict(data.draw(arguments_for(tool), label="arguments"))
    arguments["unexpected_key"] = data.draw(SCALARS, label="value")
    assert isinstance(check(validator, name, arguments), PreparedCall)
    refused, said = await server_refuses(desk, name, arguments)
    assert not refused, said


async def test_keel_is_stricter_than_lax_coercion(validator: Validator, desk: MCPServer) -> None:
    """The one way the verdicts differ, on purpose: the schema says integer, so "5" and true
    are refused by Keel, while the server's pydantic coerces them. Keel follows the schema the
    model was given, and errs on the side of refusing."""
    for limit in ("5", True):
        arguments = {"query": "lopez", "limit": limit}
        assert isinstance(check(validator, "search_customers", arguments), Rejection)
        refused, _ = await server_refuses(desk, "search_customers", arguments)
        assert not refused
