"""Deleted rows: hidden from scans at once, physically gone after compaction."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig
from engine.columns import encode_fixed, encode_var
from engine.compaction import merge_step, plan
from engine.scan import load
from engine.segments import (
    SCHEMAS,
    SegmentMeta,
    add_tombstones,
    list_segments,
    read_tombstones,
    write_segment,
)
from engine.tenant import Tenant

TENANT = Tenant("ws_test", "live")


def _segment(txn, store, values: list[int]) -> int:
    cols = {}
    for name, kind in SCHEMAS["events"].items():
        if kind == "var":
            cols[name] = encode_var([str(v).encode() for v in values])
        else:
            cols[name] = encode_fixed(values, kind)
    meta = SegmentMeta(len(values), min(values), max(values), 0, 0)
    return write_segment(txn, store, TENANT.prefix, "events", cols, meta)


def _engine(tmp_path) -> Engine:
    return Engine.open(tmp_path, EngineConfig(compaction=CompactionConfig(enabled=False)))


def test_plan_rewrites_a_tombstoned_segment_first():
    metas = [(n, SegmentMeta(10, 0, 1, 0, 0)) for n in range(1, 20)]
    config = CompactionConfig(fanout=4)
    assert plan(metas, config, {7}) == ([7], 0)
    assert plan(metas, config, set())[0] == [1, 2, 3, 4]


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    data=st.data(),
)
def test_scans_hide_tombstoned_rows_and_compaction_removes_them(tmp_path_factory, sizes, data):
    engine = _engine(tmp_path_factory.mktemp("tomb"))
    try:
        store = engine.store
        expected: list[int] = []
        next_value = 0
        txn = store.begin_write()
        numbers = []
        for size in sizes:
            values = list(range(next_value, next_value + size))
            next_value += size
            number = _segment(txn, store, values)
            numbers.append(number)
            hidden = data.draw(st.sets(st.integers(0, size - 1)))
            if hidden:
                add_tombstones(txn, store, TENANT.prefix, "events", number, sorted(hidden))
            expected += [v for i, v in enumerate(values) if i not in hidden]
        txn.commit()
        with store.read() as rtxn:
            seen = load(rtxn, store, TENANT.prefix, "events", ["user"], 0, 2**62)
        assert sorted(seen["ts"].tolist()) == expected
        while merge_step(store, engine.writer, TENANT.prefix, "events", engine.config.compaction):
            pass
        with store.read() as rtxn:
            assert read_tombstones(rtxn, store, TENANT.prefix, "events") == {}
            segs = list_segments(rtxn, store, TENANT.prefix, "events")
            assert sum(m.rows for _, m in segs) == len(expected)
            after = load(rtxn, store, TENANT.prefix, "events", ["user", "props"], 0, 2**62)
        assert sorted(after["ts"].tolist()) == expected
        assert sorted(int(p) for p in after["props"]) == expected
        assert np.array_equal(np.sort(after["user"]), np.array(expected, dtype="u4"))
    finally:
        engine.close()
