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

import msgspec

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


def _leaf_key(slot: int, op: str, operand: Any) -> tuple[int, str, bytes]:
    # The same test written in two rules is one test: keyed by what decides its outcome.
    return slot, op, msgspec.json.encode(operand)


class RuleSet:
    """Programs compiled together: `values` reads every field they use once, then `tests[i]`
    decides rule i, and `matching` decides them all at once.

    `matching` is one generated function: every distinct leaf of the set is computed at most
    once per event, lazily (a rule whose first leaf fails never computes its others), and the
    groups are Python's own `and`/`or` over those results. Its leaves are the closures of
    `tests`, so both agree by construction; the function only saves the calls, and the
    repeats of leaves that several rules share (typical: most rules start from the same
    signal or event type).
    """

    def __init__(self, programs: Sequence[Any]) -> None:
        slot_of: dict[str, int] = {}
        self.tests = [compile_program(p, slot_of) for p in programs]
        self._paths = [rule_fields.FIELDS[name].path for name in slot_of]
        leaves = sum(len(p.leaves) for p in programs)
        if leaves <= _GENERATED_MAX_LEAVES:
            self.matching = _generate(programs, slot_of)
        else:
            self.matching = self._each

    def _each(self, values: list[Any], lists: Mapping[str, Set[str]]) -> list[int]:
        return [i for i, test in enumerate(self.tests) if test(values, lists)]

    def values(self, document: dict[str, Any]) -> list[Any]:
        """The value of each field the programs use, None where the document has none.
        Documents are plain JSON-like objects (`msgspec.to_builtins`); a dict check is far
        cheaper than one against Mapping, and runs once per field part per identification."""
        out: list[Any] = []
        for path in self._paths:
            value: Any = document
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            out.append(value)
        return out


Matching = Callable[[list[Any], Mapping[str, Set[str]]], list[int]]
# Compiling the generated source costs about 30 µs per leaf, paid by the identification that
# first sees a changed rule set: beyond this many leaves the set runs its closures one by one.
_GENERATED_MAX_LEAVES = 1000


def _generate(programs: Sequence[Any], slot_of: dict[str, int]) -> Matching:
    """One generated function that returns the indexes of the matching programs, in order."""
    leaf_index: dict[tuple[int, str, bytes], int] = {}
    namespace: dict[str, Any] = {}
    lines: list[str] = []
    for i, program in enumerate(programs):
        stack: list[str] = []
        for kind, arg in zip(program.kinds, program.args, strict=True):
            if kind == rule_codes.LEAF:
                lf = program.leaves[arg]
                slot = slot_of[program.fields[lf.slot]]
                key = _leaf_key(slot, lf.op, lf.value)
                n = leaf_index.get(key)
                if n is None:
                    n = leaf_index[key] = len(leaf_index)
                    namespace[f"f{n}"] = _leaf(slot, lf.op, lf.value)
                # Computed on first use, then read: c{n} is None until then.
                stack.append(f"(c{n} if c{n} is not None else (c{n} := f{n}(v, lists)))")
            else:
                children = stack[-arg:]
                del stack[-arg:]
                joiner = " and " if kind == rule_codes.AND else " or "
                stack.append("(" + joiner.join(children) + ")")
        lines.append(f"    if {stack[0]}:\n        out.append({i})")
    head = "def matching(v, lists):\n    out = []\n"
    if leaf_index:
        head += "    " + " = ".join(f"c{n}" for n in range(len(leaf_index))) + " = None\n"
    source = head + "\n".join(lines) + "\n    return out\n"
    exec(compile(source, "<rule set>", "exec"), namespace)
    return namespace["matching"]
