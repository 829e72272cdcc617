"""The numba kernels behind funnels: one pass over each user's matching events.

Input is one row per event that matches at least one step, sorted by (user, timestamp, stored
order); `starts` holds each user's first row (plus the end), `bits` has bit s set when the row
matches step s. Each kernel writes the level every user reached (0..k) and, per step s >= 1, the
time from step s to step s+1 of the first chain that reached step s+1 (or -1). The semantics are
in docs/funnels.md; `tests/unit/engine/test_funnels.py` holds them to an SQL formulation.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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


@njit(cache=True, nogil=True)
def group_stable(keys, n_keys):  # pragma: no cover - compiled
    """A stable counting sort: the permutation that groups equal keys (0 <= key < n_keys) and
    keeps the input order within each group. O(rows + keys), where a comparison sort of
    millions of random user ids costs most of a funnel query."""
    counts = np.zeros(n_keys + 1, np.int64)
    for i in range(len(keys)):
        counts[keys[i] + 1] += 1
    for k in range(n_keys):
        counts[k + 1] += counts[k]
    out = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        k = keys[i]
        out[counts[k]] = i
        counts[k] += 1
    return out


@njit(cache=True, nogil=True)
def sort_groups_by_time(starts, ts, order):  # pragma: no cover - compiled
    """Sort each group's slice of `ts` (and `order` with it) by time, stably, in place.
    Slices already in time order, the usual case, cost one comparison per row."""
    for g in range(len(starts) - 1):
        lo, hi = starts[g], starts[g + 1]
        ordered = True
        for j in range(lo + 1, hi):
            if ts[j] < ts[j - 1]:
                ordered = False
                break
        if ordered:
            continue
        if hi - lo <= 32:
            # Insertion sort: stable, and no allocation for the many short slices.
            for j in range(lo + 1, hi):
                t, o = ts[j], order[j]
                i = j - 1
                while i >= lo and ts[i] > t:
                    ts[i + 1] = ts[i]
                    order[i + 1] = order[i]
                    i -= 1
                ts[i + 1] = t
                order[i + 1] = o
            continue
        perm = np.argsort(ts[lo:hi], kind="mergesort")
        ts[lo:hi] = ts[lo:hi][perm]
        order[lo:hi] = order[lo:hi][perm]


KERNELS = {"ordered": ordered, "strict": strict, "any": any_order}


def run(
    order: str, starts: np.ndarray, ts: np.ndarray, bits: np.ndarray, k: int, window_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """(level per user, time from step s to s+1 per user in µs or -1)."""
    users = len(starts) - 1
    level = np.zeros(users, np.int64)
    delta = np.full((users, k), -1, np.int64)
    KERNELS[order](
        starts.astype(np.int64), ts.astype(np.int64), bits.astype(np.int64), k, window_us,
        level, delta,
    )  # fmt: skip
    return level, delta
