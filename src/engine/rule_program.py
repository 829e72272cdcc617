"""Rule conditions compiled once, at write time, into a flat program.

The program is a postfix sequence of leaves and AND/OR groups over field slots. Two evaluators
run it: `run` for the single event of a request (Python over native values) and `run_columns`
for many rows at once (the numba kernel in `rule_kernel`, for backtests). Both must agree with
`rules.evaluate`, which defines the semantics; property-based tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

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
    n_leaves = len(program.leaves)
    leaf_slot = np.zeros(n_leaves, np.int32)
    leaf_op = np.zeros(n_leaves, np.int32)
    leaf_const = np.zeros(n_leaves, np.float64)
    set_start = np.zeros(n_leaves, np.int64)
    set_end = np.zeros(n_leaves, np.int64)
    sets: list[float] = []
    for j, lf in enumerate(program.leaves):
        field = program.fields[lf.slot]
        kind = rule_fields.FIELDS[field].kind
        table = columns.codes.get(field, {})
        leaf_slot[j] = lf.slot
        op, value = lf.op, lf.value
        if op == "exists":
            leaf_op[j] = rule_kernel.EXISTS if value else rule_kernel.MISSING
            continue
        if op == "contains":
            # Substring tests become membership in the codes of the strings that contain it.
            op, members = "in", [code for s, code in table.items() if value in s]
        elif op in ("in", "not_in"):
            items = lists.get(value["list"], ()) if isinstance(value, Mapping) else value
            members = [_code(kind, table, item) for item in items]
        else:
            members = None
            leaf_const[j] = _code(kind, table, value)
        leaf_op[j] = _LEAF_CODES[op]
        if members is not None:
            ordered = sorted({m for m in members if not np.isnan(m)})
            set_start[j] = len(sets)
            sets.extend(ordered)
            set_end[j] = len(sets)
    from .rule_kernel import evaluate_rows  # numba loads on the first column evaluation

    return evaluate_rows(
        np.asarray(program.kinds, np.int32),
        np.asarray(program.args, np.int32),
        leaf_slot,
        leaf_op,
        leaf_const,
        set_start,
        set_end,
        np.asarray(sets, np.float64),
        columns.values,
    )


def _code(kind: str, table: Mapping[str, float], value: Any) -> float:
    """A constant in the column encoding; a string absent from the column gets a code no row
    has, and a value of the wrong kind one that no row can equal."""
    if kind == "string":
        return table.get(value, -1.0) if isinstance(value, str) else -2.0
    if kind == "bool":
        return float(value) if isinstance(value, bool) else -2.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan  # never equal: NaN compares false
    return float(value)
