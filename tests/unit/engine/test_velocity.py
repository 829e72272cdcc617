"""Velocity: the one-pass update of an address's visitors agrees with its plain definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.velocity import DAY_US, HOUR_US, MAX_IP_VISITORS, ip_visitors

NOW = 1_800_000_000_000_000


def _definition(stored, visitor_id, now):
    last = next((ts for v, ts in reversed(stored) if v == visitor_id), None)
    seen = [(v, ts) for v, ts in stored if now - ts < DAY_US and v != visitor_id]
    seen.append((visitor_id, now))
    seen = seen[-MAX_IP_VISITORS:]
    return seen, last, sum(1 for _, ts in seen if now - ts < HOUR_US)


_entries = st.lists(
    st.tuples(
        st.sampled_from([f"pv_{i}" for i in range(8)]),
        # within the hour, the day, older, and a little in the future (clock skew)
        st.integers(NOW - 2 * DAY_US, NOW + 60_000_000),
    ),
    max_size=3 * MAX_IP_VISITORS,
)


@given(stored=_entries, visitor=st.sampled_from(["pv_0", "pv_3", "pv_new"]))
def test_one_pass_matches_the_definition(stored, visitor):
    assert ip_visitors(stored, visitor, NOW) == _definition(stored, visitor, NOW)
