"""Expired insert_ids are pruned in bounded steps; fresh ones stay and still deduplicate."""

from __future__ import annotations

from engine.dedup import prune_step
from engine.events import EventIn
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
