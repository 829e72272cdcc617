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


def test_a_write_too_large_for_the_space_left_fails_alone_in_its_group(tmp_path):
    import base64
    import os
    import threading

    class Gate:
        """Holds the writer inside a transaction until released, so that others queue up."""

        def __init__(self) -> None:
            self.entered, self.release = threading.Event(), threading.Event()

        def apply(self, ctx):
            self.entered.set()
            assert self.release.wait(60)

    config = EngineConfig(
        max_size_bytes=4 * 1024 * 1024, compaction=CompactionConfig(enabled=False)
    )
    with Engine.open(tmp_path / "d", config) as engine:
        ws = engine.create_workspace("full")
        tenant = engine.authenticate(ws.keys.plx_live).tenant

        def big() -> msgspec.Raw:  # incompressible, so that the batch outgrows the map
            return msgspec.Raw(
                msgspec.json.encode({"pad": base64.b64encode(os.urandom(22_000)).decode()})
            )

        gate = Gate()
        engine.writer.submit(gate)
        assert gate.entered.wait(60)
        small = [
            engine.submit_events(tenant, [EventIn(user_id="u", event="e", insert_id=f"s{i}")])
            for i in range(3)
        ]
        batch = [
            EventIn(user_id="u", event="e", insert_id=f"b{i}", properties=big()) for i in range(300)
        ]
        too_big = engine.submit_events(tenant, batch, batch=True)
        small += [
            engine.submit_events(tenant, [EventIn(user_id="u", event="e", insert_id=f"s{i}")])
            for i in range(3, 6)
        ]
        before = engine.store.env.info()["last_txnid"]
        gate.release.set()  # the six small writes and the batch now form one group
        assert isinstance(too_big.exception(timeout=30), StorageFull)
        assert [f.result(timeout=30).stored for f in small] == [1] * 6
        # The group failed whole (an aborted transaction commits nothing), then each small
        # write committed on its own and the batch alone failed.
        assert engine.store.env.info()["last_txnid"] - before == 6
        assert sorted(r["insert_id"] for r in _rows(engine, tenant)) == [f"s{i}" for i in range(6)]
