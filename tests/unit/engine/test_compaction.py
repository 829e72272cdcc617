"""Compaction plans bounded steps and never changes what a scan returns."""

from __future__ import annotations

import threading

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig
from engine.compaction import plan
from engine.events import EventIn
from engine.segments import SegmentMeta, list_segments


def _metas(rows_levels):
    return [(i + 1, SegmentMeta(r, 0, 1, lvl, 0)) for i, (r, lvl) in enumerate(rows_levels)]


def test_plan_waits_for_fanout_and_respects_levels_and_bounds():
    config = CompactionConfig(fanout=4, target_rows=1000, max_step_rows=100)
    assert plan(_metas([(10, 0)] * 3), config) is None
    assert plan(_metas([(10, 0)] * 4), config) == ([1, 2, 3, 4], 1)
    # Segments at the target size are final.
    assert plan(_metas([(1000, 0)] * 8), config) is None
    # A step copies at most max_step_rows.
    assert plan(_metas([(40, 1)] * 4), config) == ([1, 2], 2)
    # The lowest level goes first.
    mixed = _metas([(5, 1)] * 4 + [(1, 0)] * 4)
    assert plan(mixed, config) == ([5, 6, 7, 8], 1)


def _export(engine, tenant):
    return [
        msgspec.json.decode(line)
        for line in b"".join(engine.export_ndjson(tenant, 0, 2**62)).splitlines()
    ]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=40))
def test_compaction_keeps_every_row_and_the_order(tmp_path_factory, batch_sizes):
    config = EngineConfig(
        compaction=CompactionConfig(enabled=False, fanout=3, target_rows=50, max_step_rows=40)
    )
    with Engine.open(tmp_path_factory.mktemp("c"), config) as engine:
        ws = engine.create_workspace("c")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        n = 0
        for size in batch_sizes:
            events = [
                EventIn(user_id=f"u{(n + i) % 5}", event="e", timestamp=None) for i in range(size)
            ]
            n += size
            engine.track_batch(tenant, events)
        before = _export(engine, tenant)
        with engine.store.read() as txn:
            segments_before = len(list_segments(txn, engine.store, tenant.prefix, "events"))
        engine.compact(tenant)
        after = _export(engine, tenant)
        with engine.store.read() as txn:
            segments_after = list_segments(txn, engine.store, tenant.prefix, "events")
        assert after == before and len(after) == n
        assert len(segments_after) <= segments_before
        assert sum(m.rows for _, m in segments_after) == n
        if segments_before >= 3:
            assert len(segments_after) < segments_before


def test_background_compaction_during_ingestion_loses_and_duplicates_nothing(tmp_path):
    config = EngineConfig(compaction=CompactionConfig(fanout=4, target_rows=400, max_step_rows=400))
    with Engine.open(tmp_path / "d", config) as engine:
        ws = engine.create_workspace("c")
        tenant = engine.authenticate(ws.keys.plx_live).tenant

        def send(t):
            for j in range(150):
                engine.track(tenant, EventIn(user_id=f"t{t}", event="e", insert_id=f"{t}:{j}"))

        threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        engine.compact(tenant)
        rows = _export(engine, tenant)
        assert sorted(r["insert_id"] for r in rows) == sorted(
            f"{t}:{j}" for t in range(4) for j in range(150)
        )
        with engine.store.read() as txn:
            segments = list_segments(txn, engine.store, tenant.prefix, "events")
        assert len(segments) < 600 / 4
