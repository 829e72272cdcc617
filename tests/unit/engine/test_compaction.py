"""Compaction plans bounded steps and never changes what a scan returns."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, export
from engine.compaction import merge_step, plan
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


def test_plan_edge_cases():
    config = CompactionConfig(fanout=4, target_rows=1000, max_step_rows=1000)
    assert plan([], config) is None
    # Only the first `fanout` segments of a level go into one step.
    assert plan(_metas([(1, 0)] * 10), config) == ([1, 2, 3, 4], 1)
    # Final segments do not count toward the fan-out of their level.
    assert plan(_metas([(10, 0), (1000, 0), (10, 0), (10, 0)]), config) is None
    assert plan(_metas([(10, 0), (1000, 0), (10, 0), (10, 0), (5, 0)]), config) == (
        [1, 3, 4, 5],
        1,
    )
    # A level without enough segments is skipped; a higher one may still be due.
    assert plan(_metas([(1, 0)] * 3 + [(50, 2)] * 4), config) == ([4, 5, 6, 7], 3)
    # A step of exactly max_step_rows is allowed.
    exact = CompactionConfig(fanout=2, target_rows=1000, max_step_rows=100)
    assert plan(_metas([(50, 0), (50, 0)]), exact) == ([1, 2], 1)
    assert plan(_metas([(50, 0), (51, 0)]), exact) is None


def test_plan_does_not_starve_a_level_behind_large_segments():
    config = CompactionConfig(fanout=4, target_rows=1000, max_step_rows=100)
    metas = _metas([(60, 0), (60, 0)] + [(1, 0)] * 50)
    chosen = plan(metas, config)
    assert chosen is not None
    sources, level = chosen
    rows = {n: m.rows for n, m in metas}
    assert level == 1
    assert len(sources) >= 2 and sum(rows[n] for n in sources) <= config.max_step_rows
    # The same with the default configuration: two big group commits followed by small ones.
    default = CompactionConfig()
    assert plan(_metas([(200_000, 0), (200_000, 0)] + [(10, 0)] * 100), default) is not None


def _segment_count(engine, tenant):
    with engine.store.read() as txn:
        return len(list_segments(txn, engine.store, tenant.prefix, "events"))


def test_compaction_after_many_small_commits_keeps_rows_and_order(open_engine, exported):
    engine = open_engine(
        compaction=CompactionConfig(
            enabled=False, fanout=4, target_rows=10_000, max_step_rows=10_000
        )
    )
    ws = engine.create_workspace("c")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    base = datetime(2026, 5, 1, tzinfo=UTC)
    for i in range(64):
        # Timestamps out of commit order, with ties, so that order depends on (ts, received).
        stamp = base + timedelta(seconds=(i * 7) % 5)
        engine.track_batch(
            tenant,
            [
                EventIn(
                    user_id=f"u{i % 3}",
                    event=f"e{i}",
                    timestamp=stamp,
                    properties=msgspec.Raw(msgspec.json.encode({"i": i, "k": k})),
                    insert_id=f"{i}.{k}",
                )
                for k in range(i % 3 + 1)
            ],
        )
    before = exported(engine, tenant)
    assert _segment_count(engine, tenant) == 64
    steps = engine.compact(tenant)
    assert steps >= 16
    assert _segment_count(engine, tenant) < 64 // 4
    assert exported(engine, tenant) == before
    # Compacting again when nothing is due changes nothing.
    assert engine.compact(tenant) == 0
    assert exported(engine, tenant) == before


def test_compaction_concurrent_with_ingestion_loses_and_duplicates_nothing(open_engine, exported):
    engine = open_engine(
        compaction=CompactionConfig(enabled=True, fanout=3, target_rows=300, max_step_rows=200)
    )
    ws = engine.create_workspace("c")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    stop = threading.Event()
    errors: list[BaseException] = []

    def compact_loop():
        try:
            while not stop.is_set():
                engine.compact(tenant)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def send(t):
        for j in range(60):
            size = 1 + (j % 4)
            engine.track_batch(
                tenant,
                [
                    EventIn(
                        user_id=f"t{t}",
                        event="e",
                        properties=msgspec.Raw(msgspec.json.encode({"t": t, "j": j, "k": k})),
                    )
                    for k in range(size)
                ],
            )

    compactor = threading.Thread(target=compact_loop)
    compactor.start()
    senders = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    [s.start() for s in senders]
    [s.join() for s in senders]
    stop.set()
    compactor.join()
    assert errors == []
    engine.compact(tenant)
    rows = exported(engine, tenant)
    got = sorted((r["properties"]["t"], r["properties"]["j"], r["properties"]["k"]) for r in rows)
    expected = sorted((t, j, k) for t in range(4) for j in range(60) for k in range(1 + j % 4))
    assert got == expected  # same multiset: nothing lost, nothing twice
    # Each sender's rows come out in the order it sent them (its batches have rising receive times).
    for t in range(4):
        mine = [
            (r["properties"]["j"], r["properties"]["k"]) for r in rows if r["properties"]["t"] == t
        ]
        assert mine == sorted(mine)
    with engine.store.read() as txn:
        segments = list_segments(txn, engine.store, tenant.prefix, "events")
    assert sum(m.rows for _, m in segments) == len(expected)
    assert len(segments) < 240 / 3


@settings(max_examples=50, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "c"])), min_size=8, max_size=60
    ),
    data=st.data(),
)
def test_export_equals_a_reference_model_whatever_the_batches_and_compactions(
    tmp_path_factory, events, data
):
    config = EngineConfig(
        durability="relaxed",
        compaction=CompactionConfig(
            enabled=False,
            fanout=data.draw(st.integers(2, 4), label="fanout"),
            target_rows=data.draw(st.integers(4, 60), label="target_rows"),
            max_step_rows=data.draw(st.integers(4, 60), label="max_step_rows"),
        ),
    )
    base = datetime(2026, 4, 1, tzinfo=UTC)
    with Engine.open(tmp_path_factory.mktemp("model"), config) as engine:
        ws = engine.create_workspace("m")
        tenant = engine.authenticate(ws.keys.plx_test).tenant
        model: list[tuple[int, int]] = []  # (timestamp offset, sequence) in send order
        seq = merged = 0
        while seq < len(events):
            size = data.draw(st.integers(1, min(5, len(events) - seq)), label="batch")
            batch = []
            for minute, user in events[seq : seq + size]:
                batch.append(
                    EventIn(
                        user_id=user,
                        event=f"m{minute}",
                        timestamp=base + timedelta(minutes=minute),
                        properties=msgspec.Raw(b'{"seq":%d}' % seq),
                    )
                )
                model.append((minute, seq))
                seq += 1
            engine.track_batch(tenant, batch)
            if data.draw(st.booleans(), label="compact"):
                merged += engine.compact(tenant)
        # Stable sort by timestamp: ties keep the order in which they were received.
        expected = [s for _, s in sorted(model, key=lambda m: m[0])]
        for final in (False, True):
            if final:
                merged += engine.compact(tenant)
            rows = _export(engine, tenant)
            assert [r["properties"]["seq"] for r in rows] == expected
            assert [r["user_id"] for r in rows] == [events[s][1] for s in expected]
            assert [r["event"] for r in rows] == [f"m{events[s][0]}" for s in expected]
        event(f"merge steps: {min(merged, 3)}{'+' if merged > 3 else ''}")
        small = b"".join(export.ndjson(engine.store, tenant, 0, 2**62, window_rows=3))
        assert small == b"".join(engine.export_ndjson(tenant, 0, 2**62))


class _Gate:
    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, ctx):
        self.entered.set()
        self.release.wait(60)  # released by the test; the bound only ends a failed one


def test_two_merges_of_the_same_sources_apply_once(open_engine, exported):
    """Two compactors (threads or processes) may plan the same step from the same snapshot;
    the second swap must be dropped, or rows would be stored twice."""
    engine = open_engine(
        compaction=CompactionConfig(enabled=False, fanout=4, target_rows=1000, max_step_rows=1000)
    )
    ws = engine.create_workspace("c")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    for i in range(4):
        engine.track(tenant, EventIn(user_id="u", event=f"e{i}"))
    before = exported(engine, tenant)
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(60)
    outcomes: list[bool] = []

    def step():
        outcomes.append(
            merge_step(
                engine.store, engine.writer, tenant.prefix, "events", engine.config.compaction
            )
        )

    threads = [threading.Thread(target=step) for _ in range(2)]
    [t.start() for t in threads]
    deadline = time.monotonic() + 30
    # Both steps have read their sources and wait for the writer.
    while engine.writer._queue.qsize() < 2:
        assert time.monotonic() < deadline, "the merge steps did not reach the writer"
        time.sleep(0.005)
    gate.release.set()
    [t.join() for t in threads]
    assert sorted(outcomes) == [False, True]
    assert exported(engine, tenant) == before
    with engine.store.read() as txn:
        segments = list_segments(txn, engine.store, tenant.prefix, "events")
    assert [m.rows for _, m in segments] == [4]
