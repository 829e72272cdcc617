"""Conditions on properties: event properties in funnel steps and cohorts, user traits in
cohorts and breakdowns. One definition, one evaluator, for all of them.

Semantics (docs/funnels.md): a missing property satisfies only `not_equals`, `not_in` and
`exists: false`; comparisons (`gt`/`gte`/`lt`/`lte`) hold between two numbers or two strings,
never across types; `contains` is substring on strings and membership on arrays; booleans are
not numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from .errors import InvalidInput

Operator = Literal[
    "equals", "not_equals", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"
]
_MISSING = object()


class PropertyFilter(msgspec.Struct, forbid_unknown_fields=True):
    property: str
    operator: Operator
    value: Any = None


def validate(filters: Sequence[PropertyFilter], field: str) -> None:
    """Raise InvalidInput (with the exact field path) for a value that cannot fit its operator."""
    for i, f in enumerate(filters):
        where = f"{field}[{i}]"
        if not 1 <= len(f.property) <= 200:
            raise InvalidInput("A property name is 1 to 200 characters.", field=f"{where}.property")
        op, value = f.operator, f.value
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"'{op}' takes a non-empty array.", field=f"{where}.value")
        elif op == "exists":
            if not isinstance(value, bool):
                raise InvalidInput("'exists' takes true or false.", field=f"{where}.value")
        elif op in ("gt", "gte", "lt", "lte"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidInput(f"'{op}' takes a number or a string.", field=f"{where}.value")
        elif op == "contains":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InvalidInput("'contains' takes a string or a number.", field=f"{where}.value")
        elif isinstance(value, list | dict):
            raise InvalidInput(f"'{op}' takes a single value.", field=f"{where}.value")


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
