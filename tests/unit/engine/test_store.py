"""A full store refuses writes cleanly and keeps everything acknowledged before."""

from __future__ import annotations

import msgspec
import pytest

from engine import CompactionConfig, Engine, EngineConfig
from engine.errors import StorageError, StorageFull
from engine.events import EventIn
from engine.store import DATABASES


def _rows(engine, tenant):
    return [
        msgspec.json.decode(x)
        for x in b"".join(engine.export_ndjson(tenant, 0, 2**62)).splitlines()
    ]


def test_writes_past_the_size_limit_fail_cleanly_and_nothing_is_lost(tmp_path):
    config = EngineConfig(
        max_size_bytes=2 * 1024 * 1024, compaction=CompactionConfig(enabled=False)
    )
    acknowledged = []
    with Engine.open(tmp_path / "d", config) as engine:
        ws = engine.create_workspace("full")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        big = msgspec.Raw(msgspec.json.encode({"pad": "x" * 30_000}))
        with pytest.raises(StorageFull) as info:
            for i in range(10_000):
                engine.track(
                    tenant, EventIn(user_id="u", event="e", insert_id=str(i), properties=big)
                )
                acknowledged.append(str(i))
        assert type(info.value) is StorageFull and isinstance(info.value, StorageError)
        assert info.value.code == "storage_full"
        assert len(acknowledged) >= 10, "some events fit before the limit"
        # The writer survives: the next big write is refused the same way, not hung or crashed.
        with pytest.raises(StorageFull):
            engine.track(tenant, EventIn(user_id="u", event="e", insert_id="again", properties=big))
        # A whole batch is refused at once: none of its events is stored.
        with pytest.raises(StorageFull):
            engine.track_batch(
                tenant,
                [
                    EventIn(user_id="u", event="e", insert_id=f"b{i}", properties=big)
                    for i in range(20)
                ],
            )
        assert [r["insert_id"] for r in _rows(engine, tenant)] == acknowledged
        assert engine.usage(ws.id).events.live == len(acknowledged)
    with Engine.open(tmp_path / "d", config) as engine:
        rows = _rows(engine, tenant)
        assert [r["insert_id"] for r in rows] == acknowledged
        assert all(r["properties"] == {"pad": "x" * 30_000} for r in rows)
        assert engine.usage(ws.id).events.live == len(acknowledged)
    # With a larger limit the same store takes writes again, and the refused insert_id was not
    # remembered: nothing of a refused write survives.
    with Engine.open(tmp_path / "d", EngineConfig(max_size_bytes=64 * 1024 * 1024)) as engine:
        assert engine.track(tenant, EventIn(user_id="u", event="e", insert_id="again")).stored == 1
        assert len(_rows(engine, tenant)) == len(acknowledged) + 1


def test_every_named_database_exists_and_the_store_reopens(tmp_path):
    with Engine.open(tmp_path / "d") as engine:
        assert set(engine.store.dbs) == {name.decode() for name in DATABASES}
        engine.create_workspace("x")
    with Engine.open(tmp_path / "d") as engine:
        assert [w.name for w in engine.workspaces()] == ["x"]
