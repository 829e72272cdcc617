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
def _compare(a, a0, a1, b, b0, b1):
    """-1, 0 or 1 as bytes a[a0:a1] sort before, equal or after b[b0:b1]."""
    n = min(a1 - a0, b1 - b0)
    for k in range(n):
        x, y = a[a0 + k], b[b0 + k]
        if x != y:
            return -1 if x < y else 1
    la, lb = a1 - a0, b1 - b0
    return 0 if la == lb else (-1 if la < lb else 1)


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
            size = _fold(data, lo, hi, space, buf)
            if size < 0:
                out[r] = UNFOLDED
                continue
            a, a0, a1 = buf, 0, size
        left, right = 0, len(t_offsets) - 1
        found = OTHER
        while left < right:  # binary search in the sorted targets
            mid = (left + right) // 2
            c = _compare(a, a0, a1, t_data, t_offsets[mid], t_offsets[mid + 1])
            if c == 0:
                found = mid
                break
            if c > 0:
                left = mid + 1
            else:
                right = mid
        out[r] = found
    return out


def match_targets(offsets, data, rows, t_offsets, t_data, fold):  # type: ignore[no-untyped-def]
    """Per row: the index of the target (sorted, distinct) equal to its value, OTHER, MISSING,
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
