"""Export: timestamp order, bounds, and the same answer whatever the window size."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import msgspec
import polars as pl

from engine import export
from engine.events import EventIn

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
