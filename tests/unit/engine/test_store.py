"""A full store refuses writes cleanly and keeps everything acknowledged before."""

from __future__ import annotations

import msgspec
import pytest

from engine import CompactionConfig, Engine, EngineConfig
from engine.errors import StorageFull
from engine.events import EventIn


def test_writes_past_the_size_limit_fail_cleanly_and_nothing_is_lost(tmp_path):
    config = EngineConfig(
        max_size_bytes=4 * 1024 * 1024, compaction=CompactionConfig(enabled=False)
    )
    acknowledged = []
    with Engine.open(tmp_path / "d", config) as engine:
        ws = engine.create_workspace("full")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        big = msgspec.Raw(msgspec.json.encode({"pad": "x" * 30_000}))
        with pytest.raises(StorageFull):
            for i in range(10_000):
                engine.track(
                    tenant, EventIn(user_id="u", event="e", insert_id=str(i), properties=big)
                )
                acknowledged.append(str(i))
        assert acknowledged, "some events fit before the limit"
    with Engine.open(tmp_path / "d", config) as engine:
        rows = [
            msgspec.json.decode(x)
            for x in b"".join(engine.export_ndjson(tenant, 0, 2**62)).splitlines()
        ]
        assert [r["insert_id"] for r in rows] == acknowledged
