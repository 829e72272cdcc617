"""The request-path evaluator: a rule set compiled into Python closures.

An identification is checked against every live and monitor rule before it is answered. Walking
each program's postfix instructions with the generic leaf function cost about 7 µs per rule, so
a set of 100 rules took most of a millisecond. Here each leaf becomes a closure specialised for
its operator and constant, groups short-circuit, and the fields that any rule reads are read
once per event into one list of values. Semantics are those of `rules.leaf` (the reference);
the property tests in tests/unit/engine/test_rule_program.py hold all evaluators to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

from . import rule_codes, rule_fields

Test = Callable[[list[Any], Mapping[str, Set[str]]], bool]


def _equals(slot: int, operand: Any) -> Test:
    if isinstance(operand, bool):
        return lambda v, lists: v[slot] is operand
    # True is not 1: a boolean value equals only a boolean operand.
    return lambda v, lists: v[slot] == operand and not isinstance(v[slot], bool)


def _in(slot: int, operand: Any) -> Test:
    if isinstance(operand, Mapping):
        name = operand["list"]

        def listed(v: list[Any], lists: Mapping[str, Set[str]]) -> bool:
            x = v[slot]
            return x is not None and x in lists.get(name, ())

        return listed
    bools = frozenset(item for item in operand if isinstance(item, bool))
    others = frozenset(item for item in operand if not isinstance(item, bool))

    def member(v: list[Any], lists: Mapping[str, Set[str]]) -> bool:
        x = v[slot]
        if isinstance(x, bool):
            return x in bools
        return x is not None and x in others

    return member


def _compare(slot: int, op: str, operand: Any) -> Test:
    if op == "gt":
        return lambda v, lists: v[slot] is not None and v[slot] > operand
    if op == "gte":
        return lambda v, lists: v[slot] is not None and v[slot] >= operand
    if op == "lt":
        return lambda v, lists: v[slot] is not None and v[slot] < operand
    return lambda v, lists: v[slot] is not None and v[slot] <= operand


def _leaf(slot: int, op: str, operand: Any) -> Test:
    if op == "exists":
        want = bool(operand)
        return lambda v, lists: (v[slot] is not None) is want
    if op == "equals":
        return _equals(slot, operand)
    if op == "not_equals":
        test = _equals(slot, operand)
        return lambda v, lists: not test(v, lists)
    if op == "in":
        return _in(slot, operand)
    if op == "not_in":
        test = _in(slot, operand)
        return lambda v, lists: not test(v, lists)
    if op == "contains":
        return lambda v, lists: isinstance(v[slot], str) and operand in v[slot]
    return _compare(slot, op, operand)


# Groups are loops, not all()/any() over a generator: creating the generator per call cost more
# than the leaves it skipped.
def _all(tests: Sequence[Test]) -> Test:
    if len(tests) == 2:
        a, b = tests
        return lambda v, lists: a(v, lists) and b(v, lists)

    def every(v: list[Any], lists: Mapping[str, Set[str]]) -> bool:
        for test in tests:  # noqa: SIM110
            if not test(v, lists):
                return False
        return True

    return every


def _any(tests: Sequence[Test]) -> Test:
    if len(tests) == 2:
        a, b = tests
        return lambda v, lists: a(v, lists) or b(v, lists)

    def some(v: list[Any], lists: Mapping[str, Set[str]]) -> bool:
        for test in tests:  # noqa: SIM110
            if test(v, lists):
                return True
        return False

    return some


def compile_program(program: Any, slot_of: dict[str, int]) -> Test:
    """One closure for a compiled program (`rule_program.Program`); fields get slots in
    `slot_of`, which grows as new fields appear (shared by every rule of a set)."""
    stack: list[Test] = []
    for kind, arg in zip(program.kinds, program.args, strict=True):
        if kind == rule_codes.LEAF:
            lf = program.leaves[arg]
            slot = slot_of.setdefault(program.fields[lf.slot], len(slot_of))
            stack.append(_leaf(slot, lf.op, lf.value))
        else:
            children = stack[-arg:]
            del stack[-arg:]
            stack.append(_all(children) if kind == rule_codes.AND else _any(children))
    return stack[0]


class RuleSet:
    """Programs compiled together: `values` reads every field they use once, then `tests[i]`
    decides rule i."""

    def __init__(self, programs: Sequence[Any]) -> None:
        slot_of: dict[str, int] = {}
        self.tests = [compile_program(p, slot_of) for p in programs]
        self._paths = [rule_fields.FIELDS[name].path for name in slot_of]

    def values(self, document: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for path in self._paths:
            value: Any = document
            for part in path:
                value = value.get(part) if isinstance(value, Mapping) else None
            out.append(value)
        return out
