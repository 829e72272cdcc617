"""Expired insert_ids are pruned in bounded steps; fresh ones stay and still deduplicate."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dedup import prune_step
from engine.events import EventIn, IngestEvents, prepare_batch
from engine.timeutil import now_us


def _dedup_keys(engine) -> int:
    with engine.store.read() as txn:
        return txn.stat(engine.store.dedup)["entries"]


def test_pruning_removes_only_expired_entries_in_bounded_steps(engine, tenant):
    for i in range(25):
        engine.track(tenant, EventIn(user_id="u", event="e", insert_id=f"old-{i}"))
    cutoff = now_us()
    for i in range(5):
        engine.track(tenant, EventIn(user_id="u", event="e", insert_id=f"new-{i}"))
    assert _dedup_keys(engine) == 30
    start, total, steps = b"", 0, 0
    while True:
        deleted, start = prune_step(engine.store, engine.writer, start, cutoff, max_keys=7)
        total += deleted
        steps += 1
        if not start:
            break
    assert total == 25 and steps >= 5
    assert _dedup_keys(engine) == 5
    again = engine.track(tenant, EventIn(user_id="u", event="e", insert_id="new-0"))
    assert again.deduplicated == 1


_WINDOW_US = 1_000_000


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.tuples(
            st.integers(0, 2 * _WINDOW_US),  # time since the previous batch
            st.lists(st.sampled_from([None, "a", "b", "c", "d"]), min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_batch_keeps_exactly_the_insert_ids_not_seen_within_the_window(engine, batches):
    """Against a model: an id is dropped when its last kept sighting is younger than the
    window, or when it came earlier in the same batch; rows without an id are always kept."""
    ws = engine.create_workspace("dedup-model", "enterprise")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    last: dict[str, int] = {}
    received = now_us()
    for gap, ids in batches:
        received += gap
        events = [EventIn(user_id="u", event="e", insert_id=i) for i in ids]
        rows = prepare_batch(events, received, engine.config)
        result = engine.writer.run(IngestEvents(tenant, rows, received, _WINDOW_US))
        expected, in_batch = 0, set()
        for i in ids:
            if i is None:
                expected += 1
            elif i not in in_batch and received - last.get(i, -(10**18)) >= _WINDOW_US:
                expected += 1
                in_batch.add(i)
                last[i] = received
            else:
                in_batch.add(i)
        assert (result.stored, result.deduplicated) == (expected, len(ids) - expected)
