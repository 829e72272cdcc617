"""Grouping a funnel's rows by user: the partitioned, threaded counting sort against a sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import funnel_kernel


def _reference(event, table, row_bits, user, ts, allowed):
    bits = (
        row_bits
        if len(row_bits)
        else np.where(event < len(table), table[np.minimum(event, len(table) - 1)], 0)
    )
    keep = bits != 0
    if len(allowed):
        keep &= np.array([u < len(allowed) and allowed[u] for u in user], bool)
    rows = np.flatnonzero(keep)
    # By user, then time, then input order: what the funnel kernels expect.
    rows = rows[np.lexsort((rows, ts[rows], user[rows]))]
    grouped = user[rows]
    firsts = (
        np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        if len(rows)
        else np.zeros(0, np.int64)
    )
    return np.r_[firsts, len(rows)], grouped[firsts], ts[rows], bits[rows], rows


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 3000),
    users=st.sampled_from([1, 5, 4096, 4097, 20_000]),
    seed=st.integers(0, 2**32 - 1),
    conditions=st.booleans(),
    cohort=st.booleans(),
)
def test_grouping_equals_a_sort_by_user_time_and_input_order(rows, users, seed, conditions, cohort):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, rows).astype(np.uint32)
    ts = rng.integers(0, 50, rows).astype(np.int64)  # many ties, rarely in order
    event = rng.integers(0, 6, rows).astype(np.uint32)
    table = np.array([1, 2, 4, 0], np.uint32)  # events 3..5: no step, 4 and 5 past the table
    row_bits = rng.integers(0, 8, rows).astype(np.uint32) if conditions else np.zeros(0, np.uint32)
    allowed = rng.random(users // 2 + 1) < 0.5 if cohort else np.zeros(0, np.bool_)
    got = funnel_kernel.group(event, table, row_bits, user, ts, allowed)
    want = _reference(event, table, row_bits, user, ts, allowed)
    for name, a, b in zip(("starts", "users", "ts", "bits", "rows"), got, want, strict=True):
        assert np.array_equal(a, b), name
