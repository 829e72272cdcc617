"""The numba kernel that evaluates any compiled rule program over columns.

One function for every program (compiled once per process, cached on disk), never one compile per
rule: the program is data (postfix instructions and leaf tables), the rows are float64 columns
where NaN means a missing value.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rule_codes import AND, EQ, EXISTS, GT, GTE, IN, LEAF, LT, LTE, MISSING, NE, NOT_IN, OR  # noqa: F401


@njit(cache=True, nogil=True)
def evaluate_rows(
    kinds, args, leaf_slot, leaf_op, leaf_const, set_start, set_end, set_values, cols
):
    n = cols.shape[1]
    out = np.empty(n, np.bool_)
    stack = np.empty(len(kinds) + 1, np.bool_)
    for r in range(n):
        sp = 0
        for i in range(len(kinds)):
            kind = kinds[i]
            if kind == LEAF:
                j = args[i]
                v = cols[leaf_slot[j], r]
                op = leaf_op[j]
                c = leaf_const[j]
                if op == EXISTS:
                    res = not np.isnan(v)
                elif op == MISSING:
                    res = np.isnan(v)
                elif np.isnan(v):
                    res = (op == NE) | (op == NOT_IN)
                elif op == EQ:
                    res = v == c
                elif op == NE:
                    res = v != c
                elif op == GT:
                    res = v > c
                elif op == GTE:
                    res = v >= c
                elif op == LT:
                    res = v < c
                elif op == LTE:
                    res = v <= c
                else:
                    lo = set_start[j]
                    hi = set_end[j]
                    found = False
                    while lo < hi:  # binary search in the sorted set
                        mid = (lo + hi) // 2
                        if set_values[mid] < v:
                            lo = mid + 1
                        else:
                            hi = mid
                    if lo < set_end[j] and set_values[lo] == v:
                        found = True
                    res = found if op == IN else not found
                stack[sp] = res
                sp += 1
            else:
                count = args[i]
                if kind == AND:
                    res = True
                    for k in range(sp - count, sp):
                        res = res and stack[k]
                else:
                    res = False
                    for k in range(sp - count, sp):
                        res = res or stack[k]
                sp -= count
                stack[sp] = res
                sp += 1
        out[r] = stack[0]
    return out
