"""Segments: numbered per tenant and table, listed by prefix, read and deleted column-wise."""

from __future__ import annotations

from engine.columns import encode_fixed, encode_var
from engine.segments import (
    SCHEMAS,
    SegmentMeta,
    delete_segment,
    list_segments,
    read_columns,
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
