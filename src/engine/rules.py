"""Rule conditions: their shape, validation, and the reference evaluator that defines them.

A condition is a tree of groups (`{"operator": "AND"|"OR", "rules": [...]}`) whose leaves are
`{"field", "operator", "value"}`. docs/rules.md states the semantics; `evaluate` here is their
definition, and every faster evaluator is tested against it.

Semantics of a missing field (absent or null in the event): it satisfies no comparison
(`equals`, `gt`, `in`, `contains`, ...), so it satisfies the negations `not_equals` and `not_in`;
`exists` with value true is false for it, with value false true. Values are compared only within
their kind: a field's kind fixes what its value must be, checked when the rule is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any, Literal

from . import codec, rule_fields
from .errors import InvalidInput

# What a rule decides for an identification.
Verdict = Literal["allow", "challenge", "block"]

OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists")
MAX_DEPTH = 10
MAX_LEAVES = 100
MAX_LIST_VALUES = 1000


def _fail(message: str, where: str) -> InvalidInput:
    return InvalidInput(message, field=where)


def _check_scalar(kind: str, value: Any, where: str) -> None:
    ok = {
        "bool": isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
    }[kind]
    if not ok:
        raise _fail(f"'{where}' must be a {kind} for this field.", where)


def validate(tree: Any, lists: Mapping[str, str] | None = None, where: str = "conditions") -> None:
    """Raise InvalidInput naming the exact path of the first problem. `lists` maps list names
    to their types."""
    if codec.number_out_of_range(tree):
        low, high = codec.NUMBER_RANGE
        raise _fail(f"'{where}' holds a number outside {low} to {high}.", where)
    leaves = _validate(tree, lists or {}, where, 1)
    if leaves > MAX_LEAVES:
        raise _fail(f"A condition holds at most {MAX_LEAVES} leaves; this one has {leaves}.", where)


def _validate(node: Any, lists: Mapping[str, str], where: str, depth: int) -> int:
    if depth > MAX_DEPTH:
        raise _fail(f"Conditions nest at most {MAX_DEPTH} levels deep.", where)
    if not isinstance(node, Mapping):
        raise _fail(f"'{where}' must be an object.", where)
    if "rules" in node or node.get("operator") in ("AND", "OR"):
        op, children = node.get("operator"), node.get("rules")
        if op not in ("AND", "OR"):
            raise _fail("A group's 'operator' must be AND or OR.", f"{where}.operator")
        if not isinstance(children, list) or not children:
            raise _fail("A group needs a non-empty 'rules' array.", f"{where}.rules")
        return sum(
            _validate(child, lists, f"{where}.rules[{i}]", depth + 1)
            for i, child in enumerate(children)
        )
    field, op = node.get("field"), node.get("operator")
    if not isinstance(field, str) or field not in rule_fields.FIELDS:
        raise _fail(f"Unknown field {field!r}; see docs/rules.md for the list.", f"{where}.field")
    if op not in OPERATORS:
        raise _fail(f"Unknown operator {op!r}.", f"{where}.operator")
    spec = rule_fields.FIELDS[field]
    if "value" not in node:
        raise _fail("'value' is required.", f"{where}.value")
    value, vwhere = node["value"], f"{where}.value"
    if op == "exists":
        _check_scalar("bool", value, vwhere)
    elif op in ("gt", "gte", "lt", "lte"):
        if spec.kind != "number":
            raise _fail(
                f"'{op}' applies to number fields; {field} is a {spec.kind}.", f"{where}.operator"
            )
        _check_scalar("number", value, vwhere)
    elif op == "contains":
        if spec.kind != "string":
            raise _fail(
                f"'contains' applies to string fields; {field} is a {spec.kind}.",
                f"{where}.operator",
            )
        _check_scalar("string", value, vwhere)
    elif op in ("in", "not_in"):
        if isinstance(value, Mapping):
            name = value.get("list")
            if set(value) != {"list"} or not isinstance(name, str):
                raise _fail('A list reference is {"list": "name"}.', vwhere)
            if name not in lists:
                raise _fail(f"No list named {name!r}.", f"{vwhere}.list")
            if spec.list_type is None or lists[name] != spec.list_type:
                raise _fail(
                    f"List {name!r} holds {lists[name]} entries, not {field} values.",
                    f"{vwhere}.list",
                )
        elif isinstance(value, list):
            if len(value) > MAX_LIST_VALUES:
                raise _fail(f"At most {MAX_LIST_VALUES} values.", vwhere)
            for i, item in enumerate(value):
                _check_scalar(spec.kind, item, f"{vwhere}[{i}]")
        else:
            raise _fail(f"'{op}' takes an array or a list reference.", vwhere)
    else:
        _check_scalar(spec.kind, value, vwhere)
    return 1


def evaluate(
    tree: Mapping[str, Any], document: Mapping[str, Any], lists: Mapping[str, Set[str]]
) -> bool:
    """The reference evaluator: plain recursion, no cleverness."""
    if "rules" in tree:
        results = [evaluate(child, document, lists) for child in tree["rules"]]
        return all(results) if tree["operator"] == "AND" else any(results)
    value = rule_fields.read(document, tree["field"])
    return leaf(tree["operator"], value, tree["value"], lists)


def leaf(op: str, value: Any, operand: Any, lists: Mapping[str, Set[str]]) -> bool:
    if op == "exists":
        return (value is not None) == operand
    if op in ("not_equals", "not_in"):
        return not leaf("equals" if op == "not_equals" else "in", value, operand, lists)
    if value is None:
        return False
    if op == "equals":
        return _same(value, operand)
    if op == "gt":
        return value > operand
    if op == "gte":
        return value >= operand
    if op == "lt":
        return value < operand
    if op == "lte":
        return value <= operand
    if op == "contains":
        return isinstance(value, str) and operand in value
    if op == "in":
        if isinstance(operand, Mapping):
            return value in lists.get(operand["list"], ())
        return any(_same(value, item) for item in operand)
    raise ValueError(op)


def _same(value: Any, operand: Any) -> bool:
    # True is not 1: booleans equal only booleans; numbers compare by value; "1" is not 1.
    if isinstance(value, bool) or isinstance(operand, bool):
        return isinstance(value, bool) and isinstance(operand, bool) and value == operand
    return bool(value == operand)
