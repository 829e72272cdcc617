"""Numba kernels of backtests that numpy has no fast form for.

Like `rule_kernel`, each is one function for every input (compiled once per process, cached on
disk) and loads numba only when a backtest runs. Variable-length columns come in as their stored
form: int64 offsets into one uint8 buffer, plus the indexes of the rows to read.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MISSING = -2  # an empty value: the event had none
OTHER = -1  # a value that is none of the targets
UNFOLDED = -3  # non-ASCII: the caller folds it with Python's own str.strip().lower()

# Bytes that str.strip() removes from an ASCII string.
_SPACE = np.zeros(256, np.bool_)
_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


@njit(cache=True, nogil=True)
def _hash(data, lo, hi):
    """FNV-1a over data[lo:hi]."""
    h = np.uint64(14695981039346656037)
    for k in range(lo, hi):
        h = (h ^ np.uint64(data[k])) * np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def _same(a, a0, a1, b, b0, b1):
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):  # noqa: SIM110 - numba compiles the loop, not a generator
        if a[a0 + k] != b[b0 + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _fold(data, lo, hi, space, out):
    """Strip and lower-case an ASCII value into `out`; -1 when it holds a non-ASCII byte."""
    for k in range(lo, hi):
        if data[k] >= 128:
            return -1
    while lo < hi and space[data[lo]]:
        lo += 1
    while hi > lo and space[data[hi - 1]]:
        hi -= 1
    for k in range(lo, hi):
        c = data[k]
        out[k - lo] = c + 32 if 65 <= c <= 90 else c
    return hi - lo


@njit(cache=True, nogil=True)
def _match(offsets, data, rows, t_offsets, t_data, fold, space):
    # The targets go in an open-addressing table keyed by hash: one probe per row, and a byte
    # comparison only when the hashes agree.
    n_targets = len(t_offsets) - 1
    size = 1
    while size < 2 * n_targets:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, np.int64)
    for t in range(n_targets):
        slot = _hash(t_data, t_offsets[t], t_offsets[t + 1]) & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = t
    n = len(rows)
    out = np.empty(n, np.int32)
    width = 0
    for r in range(n):
        i = rows[r]
        width = max(width, offsets[i + 1] - offsets[i])
    buf = np.empty(max(width, 1), np.uint8)
    for r in range(n):
        i = rows[r]
        lo, hi = offsets[i], offsets[i + 1]
        if lo == hi:
            out[r] = MISSING
            continue
        a, a0, a1 = data, lo, hi
        if fold:
            folded = _fold(data, lo, hi, space, buf)
            if folded < 0:
                out[r] = UNFOLDED
                continue
            a, a0, a1 = buf, 0, folded
        found = OTHER
        if n_targets:
            slot = _hash(a, a0, a1) & mask
            while table[slot] >= 0:
                t = table[slot]
                if _same(a, a0, a1, t_data, t_offsets[t], t_offsets[t + 1]):
                    found = t
                    break
                slot = (slot + np.uint64(1)) & mask
        out[r] = found
    return out


def match_targets(offsets, data, rows, t_offsets, t_data, fold):  # type: ignore[no-untyped-def]
    """Per row: the index of the target (distinct values) equal to its value, OTHER, MISSING,
    or UNFOLDED. With `fold`, the row's value is stripped and lower-cased first."""
    return _match(offsets, data, rows, t_offsets, t_data, fold, _SPACE)


@njit(cache=True, nogil=True)
def contains(offsets, data, rows, needle):
    """Per row: 1.0 when its value contains `needle`, 0.0 when not, NaN when it has none."""
    n, m = len(rows), len(needle)
    out = np.empty(n, np.float64)
    for r in range(n):
        i = rows[r]
        lo, hi = offsets[i], offsets[i + 1]
        if lo == hi:
            out[r] = np.nan
            continue
        hit = 0.0
        for s in range(lo, hi - m + 1):
            k = 0
            while k < m and data[s + k] == needle[k]:
                k += 1
            if k == m:
                hit = 1.0
                break
        out[r] = hit
    return out


@njit(cache=True, nogil=True)
def visitor_history(visitors, ts, start_us, bucket_us, flagged, size):
    """Per visitor code: a bit per `bucket_us` period after `start_us` in which it was seen, and
    whether any of its rows is flagged."""
    days = np.zeros(size, np.uint64)
    dirty = np.zeros(size, np.bool_)
    one = np.uint64(1)
    for r in range(len(visitors)):
        v = visitors[r]
        days[v] |= one << np.uint64((ts[r] - start_us) // bucket_us)
        if flagged[r]:
            dirty[v] = True
    return days, dirty
