"""The numba kernels of auto-discovery: one pass over each user's activation events.

Input: the analysed users' activation-window events sorted by (user, time, stored order), event
names as dense codes 0..E-1, `starts` the first row of each user (plus the end), `retained` one
flag per user. Outputs are sums over users, never per-user matrices: for every candidate, how
many users did it (`n1`) and how many of those were retained (`n11`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def singles(starts, codes, retained, n_codes, thresholds):  # pragma: no cover - compiled
    """Per event and count threshold t: users who did the event at least thresholds[t] times."""
    n1 = np.zeros((n_codes, len(thresholds)), np.int64)
    n11 = np.zeros((n_codes, len(thresholds)), np.int64)
    counts = np.zeros(n_codes, np.int64)
    for u in range(len(starts) - 1):
        for j in range(starts[u], starts[u + 1]):
            counts[codes[j]] += 1
        for j in range(starts[u], starts[u + 1]):
            e = codes[j]
            c = counts[e]
            if c == 0:
                continue  # already counted for this user
            for t in range(len(thresholds)):
                if c >= thresholds[t]:
                    n1[e, t] += 1
                    if retained[u]:
                        n11[e, t] += 1
            counts[e] = 0
    return n1, n11


@njit(cache=True, nogil=True)
def _next_after_first(lo, hi, codes, n_codes, first, nxt, seen):
    """nxt[a, b]: the earliest row of b after the first row of a (or -1), for this user."""
    for j in range(lo, hi):
        b = codes[j]
        if first[b] < 0:
            first[b] = j
    for j in range(lo, hi):
        b = codes[j]
        for k in range(len(seen)):
            a = seen[k]
            if a < 0:
                break
            if first[a] < j and nxt[a, b] < 0:
                nxt[a, b] = j


@njit(cache=True, nogil=True)
def sequences(starts, codes, retained, n_codes, triples):  # pragma: no cover - compiled
    """Users who did a then b (pairs, all of them), and a then b then c (the given triples):
    in order, other events may come between, all within the user's activation window."""
    pair_n1 = np.zeros((n_codes, n_codes), np.int64)
    pair_n11 = np.zeros((n_codes, n_codes), np.int64)
    tri_n1 = np.zeros(len(triples), np.int64)
    tri_n11 = np.zeros(len(triples), np.int64)
    first = np.full(n_codes, -1, np.int64)
    last = np.full(n_codes, -1, np.int64)
    nxt = np.full((n_codes, n_codes), -1, np.int64)
    seen = np.full(n_codes, -1, np.int64)  # the user's distinct codes, in first-seen order
    for u in range(len(starts) - 1):
        lo, hi = starts[u], starts[u + 1]
        n_seen = 0
        for j in range(lo, hi):
            b = codes[j]
            if last[b] < 0:
                seen[n_seen] = b
                n_seen += 1
            last[b] = j
        _next_after_first(lo, hi, codes, n_codes, first, nxt, seen)
        r = retained[u]
        for x in range(n_seen):
            a = seen[x]
            for y in range(n_seen):
                b = seen[y]
                if nxt[a, b] >= 0:
                    pair_n1[a, b] += 1
                    if r:
                        pair_n11[a, b] += 1
        for t in range(len(triples)):
            a, b, c = triples[t, 0], triples[t, 1], triples[t, 2]
            mid = nxt[a, b]
            if mid >= 0 and last[c] > mid:
                tri_n1[t] += 1
                if r:
                    tri_n11[t] += 1
        # Reset only what this user touched.
        for x in range(n_seen):
            a = seen[x]
            first[a] = -1
            last[a] = -1
            for y in range(n_seen):
                nxt[a, seen[y]] = -1
            seen[x] = -1
    return pair_n1, pair_n11, tri_n1, tri_n11
