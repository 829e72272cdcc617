"""Conditions on properties: event properties in funnel steps and cohorts, user traits in
cohorts and breakdowns. One definition, one evaluator, for all of them.

Semantics (docs/funnels.md): a missing property satisfies only `not_equals`, `not_in` and
`exists: false`; comparisons (`gt`/`gte`/`lt`/`lte`) hold between two numbers or two strings,
never across types; `contains` is substring on strings and membership on arrays; booleans are
not numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec

from .codec import NUMBER_RANGE, number_out_of_range
from .errors import InvalidInput

Operator = Literal[
    "equals", "not_equals", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"
]
_MISSING = object()
PropertyName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ValueRule(msgspec.Struct, frozen=True):
    """The JSON types an operator's value may have (an array must not be empty), and what a
    refusal says. The API document states the same table."""

    types: tuple[str, ...]
    message: str


SINGLE = ValueRule(("string", "number", "boolean", "null"), "'{op}' takes a single value.")
ORDERED = ValueRule(("number", "string"), "'{op}' takes a number or a string.")
LISTED = ValueRule(("array",), "'{op}' takes a non-empty array.")
VALUE_RULES: dict[str, ValueRule] = {
    "equals": SINGLE,
    "not_equals": SINGLE,
    "gt": ORDERED,
    "gte": ORDERED,
    "lt": ORDERED,
    "lte": ORDERED,
    "in": LISTED,
    "not_in": LISTED,
    "contains": ValueRule(("string", "number"), "'contains' takes a string or a number."),
    "exists": ValueRule(("boolean",), "'exists' takes true or false."),
}


class PropertyFilter(msgspec.Struct, forbid_unknown_fields=True):
    property: PropertyName
    operator: Operator
    value: Any = None


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def validate(filters: Sequence[PropertyFilter], field: str) -> None:
    """Raise InvalidInput (with the exact field path) for a value that cannot fit its operator."""
    for i, f in enumerate(filters):
        rule = VALUE_RULES[f.operator]
        if json_type(f.value) not in rule.types or f.value == []:
            raise InvalidInput(rule.message.format(op=f.operator), field=f"{field}[{i}].value")
        if number_out_of_range(f.value):  # cohorts store their filters
            low, high = NUMBER_RANGE
            message = f"A value holds a number outside {low} to {high}."
            raise InvalidInput(message, field=f"{field}[{i}].value")


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    numbers = int | float
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _equal(a: Any, b: Any) -> bool:
    # JSON true is not 1: compare booleans only with booleans.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def holds(f: PropertyFilter, properties: Mapping[str, Any]) -> bool:
    actual = properties.get(f.property, _MISSING)
    op, value = f.operator, f.value
    if op == "exists":
        return (actual is not _MISSING and actual is not None) == value
    if actual is _MISSING or actual is None:
        return op in ("not_equals", "not_in")
    if op == "equals":
        return _equal(actual, value)
    if op == "not_equals":
        return not _equal(actual, value)
    if op == "in":
        return any(_equal(actual, v) for v in value)
    if op == "not_in":
        return not any(_equal(actual, v) for v in value)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(value, str) and value in actual
        if isinstance(actual, list):
            return any(_equal(item, value) for item in actual)
        return False
    if not _same_kind(actual, value):
        return False
    if op == "gt":
        return actual > value
    if op == "gte":
        return actual >= value
    if op == "lt":
        return actual < value
    return actual <= value


def all_hold(filters: Sequence[PropertyFilter], properties: Mapping[str, Any]) -> bool:
    return all(holds(f, properties) for f in filters)
