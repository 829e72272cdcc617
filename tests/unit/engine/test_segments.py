"""Segments: numbered per tenant and table, listed by prefix, read and deleted column-wise."""

from __future__ import annotations

import pytest

from engine.columns import encode_fixed, encode_var
from engine.segments import (
    SCHEMAS,
    SegmentMeta,
    add_tombstones,
    delete_segment,
    list_segments,
    read_columns,
    read_tombstones,
    segment_exists,
    write_segment,
)
from engine.tenant import Tenant


def _columns(values):
    out = {}
    for name, kind in SCHEMAS["events"].items():
        out[name] = (
            encode_var([b"x"] * len(values)) if kind == "var" else encode_fixed(values, kind)
        )
    return out


def test_numbers_grow_and_listing_is_per_tenant_and_table(engine):
    store = engine.store
    # "ws_a" is a prefix of "ws_ab": the key layout must still keep them apart.
    a, ab = Tenant("ws_a", "live"), Tenant("ws_ab", "live")
    txn = store.begin_write()
    n1 = write_segment(txn, store, a.prefix, "events", _columns([1, 2]), SegmentMeta(2, 1, 2, 0, 0))
    n2 = write_segment(txn, store, a.prefix, "events", _columns([3]), SegmentMeta(1, 3, 3, 0, 0))
    write_segment(txn, store, ab.prefix, "events", _columns([9]), SegmentMeta(1, 9, 9, 0, 0))
    write_segment(
        txn,
        store,
        Tenant("ws_a", "test").prefix,
        "events",
        _columns([7]),
        SegmentMeta(1, 7, 7, 0, 0),
    )
    txn.commit()
    assert n2 > n1
    with store.read() as r:
        listed = list_segments(r, store, a.prefix, "events")
        assert [n for n, _ in listed] == [n1, n2]
        assert [m.rows for _, m in listed] == [2, 1]
        cols = read_columns(r, store, a.prefix, "events", n1, ["ts", "user", "props"])
        assert cols["ts"].tolist() == [1, 2] and cols["props"].to_list() == [b"x", b"x"]
        assert len(list_segments(r, store, ab.prefix, "events")) == 1
    txn = store.begin_write()
    delete_segment(txn, store, a.prefix, "events", n1)
    txn.commit()
    with store.read() as r:
        assert [n for n, _ in list_segments(r, store, a.prefix, "events")] == [n2]
        with r.cursor(db=store.columns) as cur:
            assert not any(
                a.prefix + b"events\x00" + n1.to_bytes(8, "big") in k
                for k in cur.iternext(values=False)
            )


def _write(store, tenant, values, table="events"):
    txn = store.begin_write()
    meta = SegmentMeta(len(values), min(values), max(values), 0, 0)
    if table == "events":
        cols = _columns(values)
    else:
        cols = {
            name: encode_var([b"y"] * len(values)) if kind == "var" else encode_fixed(values, kind)
            for name, kind in SCHEMAS[table].items()
        }
    number = write_segment(txn, store, tenant.prefix, table, cols, meta)
    txn.commit()
    return number


def test_numbers_are_unique_increasing_and_never_reused(engine):
    store = engine.store
    t = Tenant("ws_n", "live")
    numbers = [_write(store, t, [i]) for i in range(5)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    txn = store.begin_write()
    delete_segment(txn, store, t.prefix, "events", numbers[-1])
    txn.commit()
    # The counter is not derived from the listing: the number of a deleted segment is not
    # handed out again (a reader holding the old segment must never see other rows under it).
    again = _write(store, t, [9])
    assert again > numbers[-1]
    with store.read() as r:
        assert [n for n, _ in list_segments(r, store, t.prefix, "events")] == [*numbers[:-1], again]


def test_numbers_survive_reopening(tmp_path):
    from engine import Engine

    t = Tenant("ws_r", "live")
    with Engine.open(tmp_path / "d") as e:
        first = _write(e.store, t, [1])
    with Engine.open(tmp_path / "d") as e:
        second = _write(e.store, t, [2])
        with e.store.read() as r:
            assert [n for n, _ in list_segments(r, e.store, t.prefix, "events")] == [first, second]
    assert second > first


def test_an_aborted_write_leaves_no_segment_and_does_not_advance_the_counter(engine):
    store = engine.store
    t = Tenant("ws_x", "live")
    txn = store.begin_write()
    lost = write_segment(txn, store, t.prefix, "events", _columns([1]), SegmentMeta(1, 1, 1, 0, 0))
    txn.abort()
    with store.read() as r:
        assert list_segments(r, store, t.prefix, "events") == []
        with r.cursor(db=store.columns) as cur:
            assert not any(k.startswith(t.prefix) for k in cur.iternext(values=False))
    assert _write(store, t, [2]) == lost


def test_tables_of_one_tenant_are_listed_apart(engine):
    store = engine.store
    t = Tenant("ws_t", "live")
    e1 = _write(store, t, [1, 2, 3])
    i1 = _write(store, t, [5], table="identifications")
    with store.read() as r:
        events = list_segments(r, store, t.prefix, "events")
        idents = list_segments(r, store, t.prefix, "identifications")
        assert [(n, m.rows) for n, m in events] == [(e1, 3)]
        assert [(n, m.rows) for n, m in idents] == [(i1, 1)]
        assert segment_exists(r, store, t.prefix, "events", e1)
        assert segment_exists(r, store, t.prefix, "identifications", i1)
        cols = read_columns(r, store, t.prefix, "identifications", i1, ["ts", "request", "bot"])
        assert cols["ts"].tolist() == [5] and cols["request"].to_list() == [b"y"]


def test_meta_roundtrip_and_reading_missing_things(engine):
    store = engine.store
    t = Tenant("ws_m", "test")
    number = _write(store, t, [30, 10, 20])
    with store.read() as r:
        [(n, meta)] = list_segments(r, store, t.prefix, "events")
        assert n == number and meta == SegmentMeta(3, 10, 30, 0, 0)
        assert not segment_exists(r, store, t.prefix, "events", number + 1)
        assert not segment_exists(r, store, Tenant("ws_m", "live").prefix, "events", number)
        with pytest.raises(KeyError):
            read_columns(r, store, t.prefix, "events", number + 1, ["ts"])
        assert read_columns(r, store, t.prefix, "events", number, []) == {}


@pytest.mark.parametrize(
    ("first", "second"),
    [("ws_a", "ws_ab"), ("ws_ab", "ws_a"), ("ws_1", "ws_10"), ("w", "ws")],
)
def test_listing_and_tombstones_never_leak_between_shared_leading_substrings(engine, first, second):
    store = engine.store
    a, b = Tenant(first, "live"), Tenant(second, "live")
    na = _write(store, a, [1])
    nb = _write(store, b, [2, 3])
    txn = store.begin_write()
    add_tombstones(txn, store, b.prefix, "events", nb, [0])
    txn.commit()
    with store.read() as r:
        assert [(n, m.rows) for n, m in list_segments(r, store, a.prefix, "events")] == [(na, 1)]
        assert [(n, m.rows) for n, m in list_segments(r, store, b.prefix, "events")] == [(nb, 2)]
        assert read_tombstones(r, store, a.prefix, "events") == {}
        assert list(read_tombstones(r, store, b.prefix, "events")) == [nb]
        assert read_columns(r, store, a.prefix, "events", na, ["ts"])["ts"].tolist() == [1]


def test_columns_added_later_read_as_no_value_in_older_segments_and_survive_merging(engine):
    """A segment written before a column was added lacks it: reading gives NO_VALUE for each
    row, and a merge with newer segments writes that value into the merged segment."""
    from engine.compaction import merge_step
    from engine.config import CompactionConfig
    from engine.segments import ADDED, NO_VALUE

    store, prefix = engine.store, Tenant("ws_old", "live").prefix
    schema = SCHEMAS["identifications"]
    added = ADDED["identifications"]

    def columns(ts, names):
        return {
            name: encode_var([b"r"] * len(ts)) if schema[name] == "var" else
            encode_fixed([7] * len(ts) if name != "ts" else ts, schema[name])
            for name in names
        }  # fmt: skip

    old = [n for n in schema if n not in added]
    txn = store.begin_write()
    first = write_segment(
        txn, store, prefix, "identifications", columns([1, 2], old), SegmentMeta(2, 1, 2, 0, 0)
    )
    write_segment(
        txn, store, prefix, "identifications", columns([3], schema), SegmentMeta(1, 3, 3, 0, 0)
    )
    txn.commit()
    with store.read() as r:
        cols = read_columns(r, store, prefix, "identifications", first, ["ts", *added])
        assert all(cols[name].tolist() == [NO_VALUE, NO_VALUE] for name in added)
        with pytest.raises(KeyError):
            read_columns(r, store, prefix, "events", first, ["user"])
        with pytest.raises(KeyError):
            read_columns(r, store, prefix, "identifications", first + 9, ["city"])
    assert merge_step(store, engine.writer, prefix, "identifications", CompactionConfig(fanout=2))
    with store.read() as r:
        [(merged, _)] = list_segments(r, store, prefix, "identifications")
        cols = read_columns(r, store, prefix, "identifications", merged, schema)
        assert cols["ts"].tolist() == [1, 2, 3]
        assert cols["city"].tolist() == [NO_VALUE, NO_VALUE, 7]
        assert cols["suspect"].tolist() == [7, 7, 7]
