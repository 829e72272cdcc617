"""Velocity: the one-pass update of an address's visitors agrees with its plain definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import EngineConfig
from engine.matching import Features
from engine.store import Store
from engine.velocity import DAY_US, HOUR_US, MAX_IP_VISITORS, ip_visitors, velocity_of
from engine.visitor_records import VisitorRecord

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


_visit = st.tuples(
    st.sampled_from(["a", "b"]),  # which process identifies: "a" keeps its cache, "b" none
    st.sampled_from([f"pv_{i}" for i in range(6)]),
    st.integers(0, 3 * HOUR_US),
)


@settings(max_examples=40, deadline=None)
@given(visits=st.lists(_visit, min_size=1, max_size=30), rolled_back=st.integers(0, 30))
def test_the_address_cache_never_answers_for_changed_bytes(tmp_path_factory, visits, rolled_back):
    """Velocity with a writer's cache equals velocity read from the store alone, while another
    process rewrites the same address and one of the cached writes is rolled back."""
    store = Store(tmp_path_factory.mktemp("vel"), EngineConfig())
    db, prefix, cache = store.visitors, b"ws\x00live\x00", {}
    try:
        for n, (process, visitor, offset) in enumerate(visits):
            now = NOW + offset
            txn = store.begin_write()
            fresh = velocity_of(txn, db, prefix, _record(visitor), "10.0.0.1", now, {})
            txn.abort()
            txn = store.begin_write()
            own = cache if process == "a" else {}
            got = velocity_of(txn, db, prefix, _record(visitor), "10.0.0.1", now, own)
            assert got == fresh
            if n == rolled_back:
                txn.abort()
            else:
                txn.commit()
    finally:
        store.close()


def _record(visitor_id: str) -> VisitorRecord:
    features = Features({}, [])
    return VisitorRecord(visitor_id, NOW, NOW, 1, features, None, [], [], [], [])
