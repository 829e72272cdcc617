"""Per-event costs of ingestion, each beside a baseline measured in the same run."""

from __future__ import annotations

import json

import msgspec
import pytest

from engine import CompactionConfig, Engine, EngineConfig
from engine import events as ev
from engine.timeutil import now_us

BODY = json.dumps(
    {
        "user_id": "usr_abc123",
        "event": "export_created",
        "timestamp": "2026-01-15T14:22:00Z",
        "properties": {"format": "csv", "row_count": 1450},
    }
).encode()
BATCH = json.dumps(
    {
        "events": [
            {"user_id": f"u{i % 97}", "event": f"e{i % 7}", "properties": {"i": i}}
            for i in range(500)
        ]
    }
).encode()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine.open(
        tmp_path_factory.mktemp("micro"), EngineConfig(compaction=CompactionConfig(enabled=False))
    )
    yield e
    e.close()


def test_baseline_decode_event_to_dict(benchmark):
    benchmark(msgspec.json.decode, BODY)


def test_decode_event_struct(benchmark):
    benchmark(ev.decode_event, BODY)


def test_prepare_event(benchmark):
    event = ev.decode_event(BODY)
    config = EngineConfig()
    benchmark(ev.prepare, event, now_us(), config)


def test_baseline_decode_batch_to_dict(benchmark):
    benchmark(msgspec.json.decode, BATCH)


def test_decode_and_prepare_batch(benchmark):
    config = EngineConfig()
    benchmark(lambda: ev.prepare_batch(ev.decode_batch(BATCH, config), now_us(), config))


def test_store_batch_of_500_durably(benchmark, engine):
    ws = engine.create_workspace("micro")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    batch = ev.decode_batch(BATCH, engine.config)
    benchmark(engine.track_batch, tenant, batch)


def test_store_single_event_durably(benchmark, engine):
    ws = engine.create_workspace("micro-single")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    event = ev.decode_event(BODY)
    benchmark(engine.track, tenant, event)
