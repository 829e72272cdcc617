"""Pending rows: every acknowledged row is seen exactly once, pending or in a segment."""

from __future__ import annotations

import json
import random

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, pending_rows
from engine.device import AgentRequest
from engine.segments import SCHEMAS, list_segments, read_columns
from engine.tenant import Tenant

TENANT = Tenant("ws_test", "live")
TABLE = "identifications"
NAMES = list(SCHEMAS[TABLE])


def _row(n: int, visitor: int) -> list:
    by_name = {
        name: (str(n).encode() if kind == "var" else (0.5 if kind == "f4" else 0))
        for name, kind in SCHEMAS[TABLE].items()
    }
    by_name.update(ts=n, visitor=visitor)
    return [by_name[name] for name in NAMES]


def _visible(engine: Engine) -> list[tuple[int, int]]:
    """(ts, visitor) of every row: the segments' and the pending ones, one snapshot."""
    store, prefix = engine.store, TENANT.prefix
    out: list[tuple[int, int]] = []
    with store.read() as txn:
        parts = [
            read_columns(txn, store, prefix, TABLE, n, ["ts", "visitor"])
            for n, _ in list_segments(txn, store, prefix, TABLE)
        ]
        parts.append(pending_rows.read(txn, store.idents, prefix, TABLE, ["ts", "visitor"]))
    for part in parts:
        out.extend(zip(part["ts"].tolist(), part["visitor"].tolist(), strict=True))
    return sorted(out)


def _append(engine: Engine, rows: list[list]) -> None:
    class Append:
        def apply(self, ctx):
            for row in rows:
                pending_rows.append(
                    ctx.txn, ctx.store.idents, TENANT.prefix, TABLE, row[0], b"r%d" % row[0], row
                )

    engine.writer.run(Append())


def _delete(engine: Engine, visitor: int) -> int:
    class Delete:
        def apply(self, ctx):
            return pending_rows.delete_where(
                ctx.txn, ctx.store.idents, TENANT.prefix, TABLE, "visitor", visitor
            )

    return engine.writer.run(Delete())


actions = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(st.integers(0, 4), min_size=1, max_size=6)),
        st.tuples(st.just("drain"), st.integers(1, 5)),
        st.tuples(st.just("delete"), st.integers(0, 4)),
        # A drain read in one snapshot and applied after later steps (`prepared`), as the
        # compactor does while requests keep writing and deleting.
        st.tuples(st.just("prepare"), st.integers(1, 5)),
        st.tuples(st.just("prepared"), st.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=actions)
def test_rows_are_seen_once_across_drains_and_deletions(tmp_path_factory, steps):
    engine = Engine.open(
        tmp_path_factory.mktemp("pending"),
        EngineConfig(compaction=CompactionConfig(enabled=False)),
    )
    try:
        model: list[tuple[int, int]] = []
        n = 0
        held: tuple[int, pending_rows.Drained | None] | None = None
        for step in steps:
            if step[0] == "append":
                rows = [_row(n + i, v) for i, v in enumerate(step[1])]
                n += len(rows)
                _append(engine, rows)
                model.extend((r[0], r[1]) for r in rows)
            elif step[0] == "drain":
                pending_rows.drain_all(engine.store, engine.writer, TENANT.prefix, TABLE, step[1])
            elif step[0] == "prepare":
                held = (step[1], pending_rows.prepare(engine.store, TENANT.prefix, TABLE, step[1]))
            elif step[0] == "prepared":
                if held is not None:
                    op = pending_rows.DrainPending(TENANT.prefix, TABLE, held[0], held[1])
                    engine.writer.run(op)
                    held = None
            else:
                # Deletion reaches pending rows only; drained ones are tombstoned elsewhere.
                with engine.store.read() as txn:
                    waiting = pending_rows.read(
                        txn, engine.store.idents, TENANT.prefix, TABLE, ["ts", "visitor"]
                    )
                gone = {
                    (t, v)
                    for t, v in zip(
                        waiting["ts"].tolist(), waiting["visitor"].tolist(), strict=True
                    )
                    if v == step[1]
                }
                assert _delete(engine, step[1]) == len(gone)
                model = [r for r in model if r not in gone]
            assert _visible(engine) == sorted(model)
        pending_rows.drain_all(engine.store, engine.writer, TENANT.prefix, TABLE, 4)
        assert pending_rows.prepare(engine.store, TENANT.prefix, TABLE, 1) is None
        assert _visible(engine) == sorted(model)
        with engine.store.read() as txn:
            sizes = [m.rows for _, m in list_segments(txn, engine.store, TENANT.prefix, TABLE)]
        assert all(1 <= s <= 5 for s in sizes)
    finally:
        engine.close()


def test_pending_columns_have_the_segment_shapes(engine):
    _append(engine, [_row(7, 3), _row(8, 4)])
    with engine.store.read() as txn:
        cols = pending_rows.read(txn, engine.store.idents, TENANT.prefix, TABLE, NAMES)
    assert cols["ts"].dtype.str == "<i8" and cols["ts"].tolist() == [7, 8]
    assert cols["confidence"].dtype.str == "<f4"
    assert cols["request"].to_list() == [b"7", b"8"]


def _identify(engine: Engine, tenant: Tenant, seed: int) -> str:
    rng = random.Random(seed)
    components = {
        "userAgent": f"Mozilla/5.0 (X11; Linux x86_64) Chrome/{120 + seed}.0",
        "canvas": f"{rng.getrandbits(64):x}",
        "webgl": {"vendor": "V", "renderer": f"R{seed}"},
        "screen": {"width": 1280 + seed, "height": 800, "colorDepth": 24},
        "timezone": "Europe/Berlin",
        "languages": ["de"],
    }
    request = msgspec.json.decode(json.dumps({"components": components}), type=AgentRequest)
    return engine.identify_device(tenant, request, client_ip="81.2.3.4").requestId


def test_identifications_wait_as_pending_rows_and_survive_a_restart(tmp_path):
    config = EngineConfig(compaction=CompactionConfig(enabled=False))
    engine = Engine.open(tmp_path, config)
    ws = engine.create_workspace("unit")
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    ids = [_identify(engine, tenant, i) for i in range(3)]
    engine.close()  # no compactor ran: the rows are still pending

    engine = Engine.open(tmp_path, config)
    try:
        with engine.store.read() as txn:
            assert list_segments(txn, engine.store, tenant.prefix, TABLE) == []
            cols = pending_rows.read(txn, engine.store.idents, tenant.prefix, TABLE, ["request"])
        assert cols["request"].to_list() == [i.encode() for i in ids]
        engine.compact(tenant)
        with engine.store.read() as txn:
            segments = list_segments(txn, engine.store, tenant.prefix, TABLE)
            assert [m.rows for _, m in segments] == [3]
            stored = read_columns(
                txn, engine.store, tenant.prefix, TABLE, segments[0][0], ["request"]
            )
        assert stored["request"].to_list() == [i.encode() for i in ids]
        assert pending_rows.prepare(engine.store, tenant.prefix, TABLE, 1) is None
    finally:
        engine.close()


def test_a_prepared_drain_leaves_later_rows_pending(engine):
    _append(engine, [_row(1, 0), _row(2, 1)])
    ready = pending_rows.prepare(engine.store, TENANT.prefix, TABLE, 10)
    _append(engine, [_row(3, 2)])
    assert engine.writer.run(pending_rows.DrainPending(TENANT.prefix, TABLE, 10, ready)) == 2
    with engine.store.read() as txn:
        left = pending_rows.read(txn, engine.store.idents, TENANT.prefix, TABLE, ["ts"])
        sizes = [m.rows for _, m in list_segments(txn, engine.store, TENANT.prefix, TABLE)]
    assert left["ts"].tolist() == [3] and sizes == [2]


def test_a_prepared_drain_whose_row_was_deleted_drains_afresh(engine):
    _append(engine, [_row(1, 0), _row(2, 1), _row(3, 0)])
    ready = pending_rows.prepare(engine.store, TENANT.prefix, TABLE, 10)
    assert _delete(engine, 1) == 1
    assert engine.writer.run(pending_rows.DrainPending(TENANT.prefix, TABLE, 10, ready)) == 2
    assert _visible(engine) == [(1, 0), (3, 0)]
    assert pending_rows.prepare(engine.store, TENANT.prefix, TABLE, 1) is None
