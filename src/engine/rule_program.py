"""Rule conditions compiled once, at write time, into a flat program.

The program is a postfix sequence of leaves and AND/OR groups over field slots. Two evaluators
run it: `run` for the single event of a request (Python over native values) and `run_columns`
for many rows at once (the numba kernel in `rule_kernel`, for backtests). Both must agree with
`rules.evaluate`, which defines the semantics; property-based tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any, Protocol

import msgspec
import numpy as np

from . import rule_codes as rule_kernel
from . import rule_fields
from .rules import leaf as reference_leaf

_LEAF_CODES = {
    "equals": rule_kernel.EQ, "not_equals": rule_kernel.NE, "gt": rule_kernel.GT,
    "gte": rule_kernel.GTE, "lt": rule_kernel.LT, "lte": rule_kernel.LTE,
    "in": rule_kernel.IN, "not_in": rule_kernel.NOT_IN,
}  # fmt: skip


class Leaf(msgspec.Struct, frozen=True, array_like=True):
    slot: int
    op: str
    value: Any  # a scalar, a list of scalars, or {"list": name}


class Program(msgspec.Struct, frozen=True, array_like=True):
    fields: list[str]  # slot -> field name
    kinds: list[int]  # LEAF / AND / OR, postfix
    args: list[int]  # leaf index, or child count of a group
    leaves: list[Leaf]


def compile_condition(tree: Mapping[str, Any]) -> Program:
    """Compile a validated condition tree (see `rules.validate`)."""
    fields: dict[str, int] = {}
    kinds: list[int] = []
    args: list[int] = []
    leaves: list[Leaf] = []

    def visit(node: Mapping[str, Any]) -> None:
        if "rules" in node:
            for child in node["rules"]:
                visit(child)
            kinds.append(rule_kernel.AND if node["operator"] == "AND" else rule_kernel.OR)
            args.append(len(node["rules"]))
            return
        slot = fields.setdefault(node["field"], len(fields))
        leaves.append(Leaf(slot, node["operator"], node["value"]))
        kinds.append(rule_kernel.LEAF)
        args.append(len(leaves) - 1)

    visit(tree)
    return Program(list(fields), kinds, args, leaves)


def run(program: Program, document: Mapping[str, Any], lists: Mapping[str, Set[str]]) -> bool:
    """The scalar path: one event document, no recursion, each field read once."""
    values = [rule_fields.read(document, f) for f in program.fields]
    stack: list[bool] = []
    leaves = program.leaves
    for kind, arg in zip(program.kinds, program.args, strict=True):
        if kind == rule_kernel.LEAF:
            lf = leaves[arg]
            stack.append(reference_leaf(lf.op, values[lf.slot], lf.value, lists))
        else:
            group = stack[-arg:]
            del stack[-arg:]
            stack.append(all(group) if kind == rule_kernel.AND else any(group))
    return stack[0]


class Columns(msgspec.Struct):
    """Rows for the kernel: one float64 row per field; strings as codes of `codes[field]`."""

    values: np.ndarray  # shape (fields, rows)
    codes: dict[str, dict[str, float]]


def columns_from_documents(
    fields: Sequence[str], documents: Sequence[Mapping[str, Any]]
) -> Columns:
    """Encode event documents as kernel columns (tests and small backtests)."""
    values = np.full((len(fields), len(documents)), np.nan)
    codes: dict[str, dict[str, float]] = {}
    for s, field in enumerate(fields):
        kind = rule_fields.FIELDS[field].kind
        table = codes.setdefault(field, {})
        for r, doc in enumerate(documents):
            v = rule_fields.read(doc, field)
            if v is None:
                continue
            if kind == "string":
                values[s, r] = table.setdefault(v, float(len(table)))
            else:
                values[s, r] = float(v)
    return Columns(values, codes)


def run_columns(program: Program, columns: Columns, lists: Mapping[str, Set[str]]) -> np.ndarray:
    """Evaluate the program over every row with the numba kernel."""
    leaves = []
    for lf in program.leaves:
        field = program.fields[lf.slot]
        table = _TableCodes(columns.codes.get(field, {}), lists)
        leaves.append(code_leaf(rule_fields.FIELDS[field].kind, lf, table))
    return run_coded(program, columns.values, [lf.slot for lf in program.leaves], leaves)


class LeafCode(msgspec.Struct):
    """One leaf as the kernel takes it: an operation and a constant or a set of codes."""

    op: int
    const: float = 0.0
    members: Sequence[float] | np.ndarray | None = None  # for IN and NOT_IN


class StringCodes(Protocol):
    """How the values of one string field became codes in the kernel's columns."""

    def code(self, value: str) -> float:
        """The value's code; a value no row holds gets a code no row has."""
        ...

    def containing(self, part: str) -> Iterable[float]:
        """Codes of the values that contain `part`."""
        ...

    def listed(self, name: str) -> Iterable[float]:
        """Codes of the members of the list `name` (none for a deleted list)."""
        ...


def code_leaf(kind: str, leaf: Leaf, strings: StringCodes) -> LeafCode:
    """A leaf's operation and operands in the column encoding of its field."""
    op, value = leaf.op, leaf.value
    if op == "exists":
        return LeafCode(rule_kernel.EXISTS if value else rule_kernel.MISSING)
    if op == "contains":
        # Substring tests become membership in the codes of the strings that contain it.
        return LeafCode(rule_kernel.IN, members=list(strings.containing(value)))
    if op in ("in", "not_in"):
        if isinstance(value, Mapping):
            members: Iterable[float] = strings.listed(value["list"])
        else:
            members = [_code(kind, strings, item) for item in value]
        return LeafCode(_LEAF_CODES[op], members=members)  # type: ignore[arg-type]
    return LeafCode(_LEAF_CODES[op], _code(kind, strings, value))


def run_coded(
    program: Program, values: np.ndarray, slots: Sequence[int], leaves: Sequence[LeafCode]
) -> np.ndarray:
    """Evaluate the program over float64 columns `values` (one row per slot, NaN = missing)
    with leaf `j` reading row `slots[j]`: for callers that coded the columns themselves."""
    n_leaves = len(leaves)
    leaf_op = np.zeros(n_leaves, np.int32)
    leaf_const = np.zeros(n_leaves, np.float64)
    set_start = np.zeros(n_leaves, np.int64)
    set_end = np.zeros(n_leaves, np.int64)
    sets: list[np.ndarray] = []
    size = 0
    for j, lf in enumerate(leaves):
        leaf_op[j], leaf_const[j] = lf.op, lf.const
        if lf.members is not None:
            members = np.unique(np.asarray(lf.members, np.float64))  # sorted for binary search
            members = members[~np.isnan(members)]
            set_start[j], size = size, size + len(members)
            set_end[j] = size
            sets.append(members)
    from .rule_kernel import evaluate_rows  # numba loads on the first column evaluation

    return evaluate_rows(
        np.asarray(program.kinds, np.int32),
        np.asarray(program.args, np.int32),
        np.asarray(slots, np.int32),
        leaf_op,
        leaf_const,
        set_start,
        set_end,
        np.concatenate(sets) if sets else np.zeros(0, np.float64),
        np.ascontiguousarray(values, np.float64),
    )


class _TableCodes:
    """String codes from a dict of the values present (`columns_from_documents`)."""

    def __init__(self, table: Mapping[str, float], lists: Mapping[str, Set[str]]) -> None:
        self._table, self._lists = table, lists

    def code(self, value: str) -> float:
        return self._table.get(value, -1.0)

    def containing(self, part: str) -> list[float]:
        return [code for s, code in self._table.items() if part in s]

    def listed(self, name: str) -> list[float]:
        return [self._table.get(item, -1.0) for item in self._lists.get(name, ())]


def _code(kind: str, strings: StringCodes, value: Any) -> float:
    """A constant in the column encoding; a string absent from the column gets a code no row
    has, and a value of the wrong kind one that no row can equal."""
    if kind == "string":
        return strings.code(value) if isinstance(value, str) else -2.0
    if kind == "bool":
        return float(value) if isinstance(value, bool) else -2.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan  # never equal: NaN compares false
    return float(value)
