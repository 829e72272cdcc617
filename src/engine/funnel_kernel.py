"""The numba kernels behind funnels: one pass over each user's matching events.

Input is one row per event that matches at least one step, sorted by (user, timestamp, stored
order); `starts` holds each user's first row (plus the end), `bits` has bit s set when the row
matches step s. Each kernel writes the level every user reached (0..k) and, per step s >= 1, the
time from step s to step s+1 of the first chain that reached step s+1 (or -1). The semantics are
in docs/funnels.md; `tests/unit/engine/test_funnels.py` holds them to an SQL formulation.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
from numba import njit

# The kernels release the GIL: the grouping and the funnel run on this many threads.
THREADS = max(1, min(4, os.cpu_count() or 1))


@njit(cache=True, nogil=True)
def ordered(starts, ts, bits, k, window, level, delta):  # pragma: no cover - compiled
    """Steps in order, other events may come between (ClickHouse windowFunnel's default)."""
    have = np.zeros(k, np.bool_)
    start = np.zeros(k, np.int64)
    last = np.zeros(k, np.int64)
    for u in range(len(starts) - 1):
        have[:] = False
        best = 0
        for j in range(starts[u], starts[u + 1]):
            t = ts[j]
            b = bits[j]
            # Highest step first, so one event never serves two consecutive steps of a chain.
            for s in range(k - 1, -1, -1):
                if not (b >> s) & 1:
                    continue
                if s == 0:
                    have[0] = True
                    start[0] = t
                    last[0] = t
                    if best == 0:
                        best = 1
                elif have[s - 1] and t - start[s - 1] <= window:
                    if s + 1 > best:
                        delta[u, s] = t - last[s - 1]
                        best = s + 1
                    # The latest start is the best chain: it leaves the most window ahead.
                    have[s] = True
                    start[s] = start[s - 1]
                    last[s] = t
        level[u] = best


@njit(cache=True, nogil=True)
def strict(starts, ts, bits, k, window, level, delta):  # pragma: no cover - compiled
    """Steps in order with no other event of the funnel between consecutive steps."""
    prev_have = np.zeros(k, np.bool_)
    prev_start = np.zeros(k, np.int64)
    cur_have = np.zeros(k, np.bool_)
    cur_start = np.zeros(k, np.int64)
    for u in range(len(starts) - 1):
        prev_have[:] = False
        prev_t = 0
        best = 0
        for j in range(starts[u], starts[u + 1]):
            t = ts[j]
            b = bits[j]
            cur_have[:] = False
            for s in range(k):
                if not (b >> s) & 1:
                    continue
                if s == 0:
                    cur_have[0] = True
                    cur_start[0] = t
                    if best == 0:
                        best = 1
                elif prev_have[s - 1] and t - prev_start[s - 1] <= window:
                    cur_have[s] = True
                    cur_start[s] = prev_start[s - 1]
                    if s + 1 > best:
                        delta[u, s] = t - prev_t
                        best = s + 1
            prev_have[:] = cur_have
            prev_start[:] = cur_start
            prev_t = t
        level[u] = best


@njit(cache=True, nogil=True)
def any_order(starts, ts, bits, k, window, level, delta):  # pragma: no cover - compiled
    """Every step done within one window, in any order; one event may serve several steps."""
    counts = np.zeros(k, np.int64)
    seen = np.zeros(k, np.bool_)
    done = np.zeros(k + 1, np.int64)
    for u in range(len(starts) - 1):
        lo, hi = starts[u], starts[u + 1]
        counts[:] = 0
        best = 0
        right = lo
        for i in range(lo, hi):
            while right < hi and ts[right] - ts[i] <= window:
                for s in range(k):
                    if (bits[right] >> s) & 1:
                        counts[s] += 1
                right += 1
            reached = 0
            while reached < k and counts[reached] > 0:
                reached += 1
            if reached > best:
                # When, within this window, each prefix of the steps became complete.
                seen[:] = False
                prefix = 0
                for j in range(i, right):
                    for s in range(k):
                        if (bits[j] >> s) & 1:
                            seen[s] = True
                    while prefix < k and seen[prefix]:
                        prefix += 1
                        done[prefix] = ts[j]
                    if prefix >= reached:
                        break
                for m in range(max(best, 1), reached):
                    delta[u, m] = done[m + 1] - done[m]
                best = reached
            for s in range(k):
                if (bits[i] >> s) & 1:
                    counts[s] -= 1
        level[u] = best


# Rows are grouped by user in two steps that each touch memory in a cache's stride: first into
# partitions of 4,096 consecutive user ids (a few hundred write streams), then each partition by
# user within it, in a region small enough for the cache. One global counting sort by user
# would write every row to a random place among megabytes.
PARTITION_SHIFT = 12
_ROW_SHIFT = 21  # a packed row holds (row index << 21) | step bits: at most 20 steps
_BITS_MASK = (1 << _ROW_SHIFT) - 1


@njit(cache=True, nogil=True, inline="always")
def _bits_of(i, event, table, row_bits):  # pragma: no cover - compiled
    if len(row_bits):
        return row_bits[i]
    e = event[i]
    return table[e] if e < len(table) else 0


@njit(cache=True, nogil=True, inline="always")
def _counted(u, allowed):  # pragma: no cover - compiled
    return len(allowed) == 0 or (u < len(allowed) and allowed[u])


@njit(cache=True, nogil=True)
def partition_counts(event, table, row_bits, user, allowed, lo, hi, parts):  # pragma: no cover
    """Rows lo..hi that match a step, per partition of users."""
    counts = np.zeros(parts, np.int64)
    for i in range(lo, hi):
        if _bits_of(i, event, table, row_bits) != 0 and _counted(user[i], allowed):
            counts[user[i] >> PARTITION_SHIFT] += 1
    return counts


@njit(cache=True, nogil=True)
def partition_rows(
    event, table, row_bits, user, ts, allowed, lo, hi, cursor, packed
):  # pragma: no cover
    """Rows lo..hi that match a step, packed as (ts, user, row << 21 | bits) at their
    partition's `cursor`, in input order."""
    for i in range(lo, hi):
        b = _bits_of(i, event, table, row_bits)
        if b != 0 and _counted(user[i], allowed):
            p = user[i] >> PARTITION_SHIFT
            j = cursor[p]
            packed[j, 0] = ts[i]
            packed[j, 1] = user[i]
            packed[j, 2] = (np.int64(i) << _ROW_SHIFT) | b
            cursor[p] = j + 1


@njit(cache=True, nogil=True, inline="always")
def _sort_by_time(lo, hi, ts, bits, rows):  # pragma: no cover - compiled
    """Sort ts[lo:hi] (`bits` and `rows` with it) by time, stably, in place. A slice already in
    time order, the usual case, costs one comparison per row."""
    ordered = True
    for j in range(lo + 1, hi):
        if ts[j] < ts[j - 1]:
            ordered = False
            break
    if ordered:
        return
    if hi - lo <= 32:
        # Insertion sort: stable, and no allocation for the many short slices.
        for j in range(lo + 1, hi):
            t, b, r = ts[j], bits[j], rows[j]
            i = j - 1
            while i >= lo and ts[i] > t:
                ts[i + 1] = ts[i]
                bits[i + 1] = bits[i]
                rows[i + 1] = rows[i]
                i -= 1
            ts[i + 1] = t
            bits[i + 1] = b
            rows[i + 1] = r
        return
    perm = np.argsort(ts[lo:hi], kind="mergesort")
    ts[lo:hi] = ts[lo:hi][perm]
    bits[lo:hi] = bits[lo:hi][perm]
    rows[lo:hi] = rows[lo:hi][perm]


@njit(cache=True, nogil=True)
def group_partitions(packed, offsets, first, last, ts, bits, rows, user_start):  # pragma: no cover
    """Partitions first..last-1 of `packed`, each grouped by user (a stable counting sort)
    into the same positions of the output columns, and each user's rows then put in time
    order while the partition is still in the cache. `user_start[u]` gets user u's first
    position (it stays -1 for a user without rows)."""
    size = 1 << PARTITION_SHIFT
    counts = np.zeros(size + 1, np.int64)
    for p in range(first, last):
        lo, hi = offsets[p], offsets[p + 1]
        base = np.int64(p) << PARTITION_SHIFT
        counts[:] = 0
        for j in range(lo, hi):
            counts[packed[j, 1] - base + 1] += 1
        for k in range(size):
            if counts[k + 1] > 0:
                user_start[base + k] = lo + counts[k]
            counts[k + 1] += counts[k]
        for j in range(lo, hi):
            u = packed[j, 1] - base
            d = lo + counts[u]
            counts[u] += 1
            ts[d] = packed[j, 0]
            bits[d] = packed[j, 2] & _BITS_MASK
            rows[d] = packed[j, 2] >> _ROW_SHIFT
        for k in range(size):  # counts[k] is now where user k's rows end
            start = user_start[base + k]
            if start >= 0:
                _sort_by_time(start, lo + counts[k], ts, bits, rows)


KERNELS = {"ordered": ordered, "strict": strict, "any": any_order}


def run(
    order: str, starts: np.ndarray, ts: np.ndarray, bits: np.ndarray, k: int, window_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """(level per user, time from step s to s+1 per user in µs or -1)."""
    users = len(starts) - 1
    level = np.zeros(users, np.int64)
    delta = np.full((users, k), -1, np.int64)
    kernel = KERNELS[order]
    starts, ts, bits = (
        np.ascontiguousarray(starts),
        np.ascontiguousarray(ts),
        np.ascontiguousarray(bits),
    )
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(
            lambda r: kernel(starts[r[0] : r[1] + 1], ts, bits, k, window_us, level[r[0] : r[1]],
                             delta[r[0] : r[1]]),
            _split(np.diff(starts), THREADS),
        ))  # fmt: skip
    return level, delta


def _split(weights: np.ndarray, pieces: int) -> list[tuple[int, int]]:
    """Consecutive ranges of indexes into `weights` with about equal sums."""
    if pieces <= 1 or len(weights) == 0:
        return [(0, len(weights))]
    cumulative = np.cumsum(weights)
    cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, pieces) / pieces)
    bounds = [0, *sorted(set(int(c) for c in cuts)), len(weights)]
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def group(
    event: np.ndarray,
    table: np.ndarray,
    row_bits: np.ndarray,
    user: np.ndarray,
    ts: np.ndarray,
    allowed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows that match a step (`row_bits[i]` when given, else `table[event[i]]`) of the
    users `allowed` (all when empty), grouped by user in input order: (starts, users, ts,
    bits, rows), `rows` being each grouped row's index in the input."""
    n = len(user)
    parts = (int(user.max()) >> PARTITION_SHIFT) + 1 if n else 1
    chunks = [(n * t // THREADS, n * (t + 1) // THREADS) for t in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        counts = list(pool.map(
            lambda c: partition_counts(event, table, row_bits, user, allowed, c[0], c[1], parts),
            chunks,
        ))  # fmt: skip
        per_part = np.sum(counts, axis=0)
        offsets = np.zeros(parts + 1, np.int64)
        np.cumsum(per_part, out=offsets[1:])
        # Each chunk writes after the earlier chunks' rows of the same partition: input order.
        cursors, before = [], offsets[:-1].copy()
        for c in counts:
            cursors.append(before.copy())
            before += c
        packed = np.empty((int(offsets[-1]), 3), np.int64)
        list(pool.map(
            lambda t: partition_rows(event, table, row_bits, user, ts, allowed, *chunks[t],
                                     cursors[t], packed),
            range(THREADS),
        ))  # fmt: skip
        m = len(packed)
        out_ts, out_bits, out_rows = (
            np.empty(m, np.int64),
            np.empty(m, np.uint32),
            np.empty(m, np.int64),
        )
        user_start = np.full(parts << PARTITION_SHIFT, -1, np.int64)
        list(pool.map(
            lambda r: group_partitions(packed, offsets, r[0], r[1], out_ts, out_bits, out_rows,
                                       user_start),
            _split(per_part, THREADS),
        ))  # fmt: skip
    users = np.flatnonzero(user_start >= 0)
    starts = np.append(user_start[users], m)
    return starts, users, out_ts, out_bits, out_rows
