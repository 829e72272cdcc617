"""Export: timestamp order, bounds, and the same answer whatever the window size."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import msgspec
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, export
from engine.compaction import merge_step
from engine.events import EventIn
from engine.segments import list_segments
from engine.timeutil import from_us, to_us

START = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(engine, tenant, n=60):
    rng = random.Random(3)
    for i in range(0, n, 7):
        batch = [
            EventIn(
                user_id=f"u{j % 4}",
                event="e",
                timestamp=START + timedelta(minutes=rng.randint(0, 30)),
                properties=msgspec.Raw(msgspec.json.encode({"j": j})),
            )
            for j in range(i, min(n, i + 7))
        ]
        engine.track_batch(tenant, batch)


def _rows(chunks):
    return [msgspec.json.decode(line) for line in b"".join(chunks).splitlines()]


def test_windows_do_not_change_the_answer(engine, tenant):
    _fill(engine, tenant)
    big = _rows(export.ndjson(engine.store, tenant, 0, 2**62))
    small = _rows(export.ndjson(engine.store, tenant, 0, 2**62, window_rows=3))
    assert big == small and len(big) == 60
    stamps = [r["timestamp"] for r in big]
    assert stamps == sorted(stamps)
    assert sorted(r["properties"]["j"] for r in big) == list(range(60))


def test_bounds_are_inclusive_exclusive(engine, tenant):
    for minute in (0, 1, 2):
        engine.track(
            tenant,
            EventIn(user_id="u", event=f"m{minute}", timestamp=START + timedelta(minutes=minute)),
        )
    us = int(START.timestamp() * 1e6)
    rows = _rows(engine.export_ndjson(tenant, us + 60_000_000, us + 120_000_000))
    assert [r["event"] for r in rows] == ["m1"]


def test_parquet_holds_the_same_rows(engine, tenant):
    _fill(engine, tenant, 20)
    lines = _rows(engine.export_ndjson(tenant, 0, 2**62))
    frame = pl.read_parquet(io.BytesIO(engine.export_parquet(tenant, 0, 2**62)))
    assert frame["user_id"].to_list() == [r["user_id"] for r in lines]
    assert [msgspec.json.decode(p) for p in frame["properties"].to_list()] == [
        r["properties"] for r in lines
    ]


def test_bounds_at_microsecond_precision(engine, tenant):
    base = to_us(START)
    stamps = [base, base + 1, base + 2, base + 2, base + 3]
    engine.track_batch(
        tenant,
        [EventIn(user_id="u", event=f"e{i}", timestamp=from_us(s)) for i, s in enumerate(stamps)],
    )
    assert [r["event"] for r in _rows(engine.export_ndjson(tenant, base + 1, base + 3))] == [
        "e1",
        "e2",
        "e3",
    ]
    assert _rows(engine.export_ndjson(tenant, base + 2, base + 2)) == []
    assert _rows(engine.export_ndjson(tenant, base + 4, base + 100)) == []
    assert _rows(engine.export_ndjson(tenant, 0, base)) == []
    assert len(_rows(engine.export_ndjson(tenant, base, base + 4))) == 5


def test_empty_store_exports_nothing(engine, tenant):
    assert b"".join(engine.export_ndjson(tenant, 0, 2**62)) == b""
    frame = pl.read_parquet(io.BytesIO(engine.export_parquet(tenant, 0, 2**62)))
    assert frame.height == 0
    assert frame.columns == [
        "user_id",
        "event",
        "timestamp",
        "properties",
        "received_at",
        "insert_id",
        "request_id",
    ]


def test_lines_are_in_timestamp_order_with_ties_in_receive_order(engine, tenant):
    # Sent newest first, in three requests; equal timestamps across requests.
    for request, minutes in enumerate([(5, 3, 1), (4, 3, 0), (5, 1)]):
        engine.track_batch(
            tenant,
            [
                EventIn(
                    user_id="u",
                    event=f"r{request}m{m}",
                    timestamp=START + timedelta(minutes=m),
                )
                for m in minutes
            ],
        )
    rows = _rows(engine.export_ndjson(tenant, 0, 2**62))
    assert [r["event"] for r in rows] == [
        "r1m0",
        "r0m1",
        "r2m1",
        "r0m3",
        "r1m3",
        "r1m4",
        "r0m5",
        "r2m5",
    ]
    for line in b"".join(engine.export_ndjson(tenant, 0, 2**62)).split(b"\n")[:-1]:
        assert set(msgspec.json.decode(line)) == {
            "user_id",
            "event",
            "timestamp",
            "properties",
            "received_at",
        }


@settings(max_examples=30, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 6), min_size=1, max_size=40),
    window=st.integers(1, 8),
    bounds=st.tuples(st.integers(-1, 8), st.integers(-1, 8)),
)
def test_any_window_size_gives_the_same_bytes(tmp_path_factory, minutes, window, bounds):
    config = EngineConfig(durability="relaxed", compaction=CompactionConfig(enabled=False))
    with Engine.open(tmp_path_factory.mktemp("w"), config) as engine:
        ws = engine.create_workspace("w")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        for i in range(0, len(minutes), 3):
            engine.track_batch(
                tenant,
                [
                    EventIn(
                        user_id=f"u{m}",
                        event="e",
                        timestamp=START + timedelta(minutes=m),
                        properties=msgspec.Raw(b'{"i":%d}' % (i + k)),
                    )
                    for k, m in enumerate(minutes[i : i + 3])
                ],
            )
        lo, hi = (to_us(START + timedelta(minutes=b)) for b in bounds)
        big = b"".join(export.ndjson(engine.store, tenant, lo, hi))
        small = b"".join(export.ndjson(engine.store, tenant, lo, hi, window_rows=window))
        assert small == big
        inside = [i for i, m in enumerate(minutes) if bounds[0] <= m < bounds[1]]
        expected = sorted(inside, key=lambda i: minutes[i])
        assert [r["properties"]["i"] for r in _rows([big])] == expected


def test_parquet_equals_ndjson_in_every_column(engine, tenant):
    _fill(engine, tenant, 30)
    engine.track_batch(
        tenant,
        [
            EventIn(
                user_id="x", event="with-ids", timestamp=START, insert_id="i-1", request_id="r-1"
            ),
            EventIn(user_id="y", event="nulls", timestamp=START, properties=msgspec.Raw(b"null")),
        ],
    )
    lines = _rows(engine.export_ndjson(tenant, 0, 2**62))
    frame = pl.read_parquet(io.BytesIO(engine.export_parquet(tenant, 0, 2**62)))
    assert frame.height == len(lines) == 32
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    for row, line in zip(frame.iter_rows(named=True), lines, strict=True):
        assert row["user_id"] == line["user_id"]
        assert row["event"] == line["event"]
        assert row["timestamp"] == datetime.fromisoformat(line["timestamp"])
        assert row["received_at"] == datetime.fromisoformat(line["received_at"])
        assert msgspec.json.decode(row["properties"]) == line["properties"]
        assert row["insert_id"] == line.get("insert_id")
        assert row["request_id"] == line.get("request_id")
    assert "i-1" in frame["insert_id"].to_list() and "r-1" in frame["request_id"].to_list()


def test_parquet_respects_bounds(engine, tenant):
    for minute in (0, 1, 2):
        engine.track(
            tenant,
            EventIn(user_id="u", event=f"m{minute}", timestamp=START + timedelta(minutes=minute)),
        )
    us = to_us(START)
    frame = pl.read_parquet(
        io.BytesIO(engine.export_parquet(tenant, us + 60_000_000, us + 120_000_000))
    )
    assert frame["event"].to_list() == ["m1"]


def test_a_streamed_export_reads_one_snapshot(engine, tenant):
    for minute in (0, 10, 20):
        engine.track(
            tenant,
            EventIn(user_id="u", event=f"m{minute}", timestamp=START + timedelta(minutes=minute)),
        )
    stream = export.ndjson(engine.store, tenant, 0, 2**62, window_rows=1)
    first = next(stream)
    engine.track(
        tenant, EventIn(user_id="u", event="late", timestamp=START + timedelta(minutes=15))
    )
    rows = _rows([first, *stream])
    assert [r["event"] for r in rows] == ["m0", "m10", "m20"]
    # A new export sees the new row, in its place.
    later = _rows(export.ndjson(engine.store, tenant, 0, 2**62, window_rows=1))
    assert [r["event"] for r in later] == ["m0", "m10", "late", "m20"]


def test_a_streamed_export_survives_compaction_between_windows(engine, tenant):
    _fill(engine, tenant, 40)  # six small segments
    with engine.store.read() as txn:
        planned = {n for n, _ in list_segments(txn, engine.store, tenant.prefix, "events")}
    assert len(planned) == 6
    whole = b"".join(export.ndjson(engine.store, tenant, 0, 2**62))
    stream = export.ndjson(engine.store, tenant, 0, 2**62, window_rows=4)
    first = next(stream)
    # The segments the stream planned from are merged away and deleted meanwhile.
    config = CompactionConfig(fanout=2, target_rows=1000, max_step_rows=1000)
    while merge_step(engine.store, engine.writer, tenant.prefix, "events", config):
        pass
    with engine.store.read() as txn:
        now = {n for n, _ in list_segments(txn, engine.store, tenant.prefix, "events")}
    assert not now & planned
    assert first + b"".join(stream) == whole
