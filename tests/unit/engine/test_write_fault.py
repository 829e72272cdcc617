"""The store-wide stop of writes after a failed flush: the marker every process honours."""

from __future__ import annotations

from engine import Engine, write_fault
from engine.errors import StorageError, WritesStopped
from engine.events import EventIn


def test_a_marker_stops_the_writes_of_every_engine_on_the_store_until_cleared(tmp_path):
    with Engine.open(tmp_path / "d") as engine:
        ws = engine.create_workspace("w")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        assert engine.track(tenant, EventIn(user_id="u", event="before")).stored == 1
        # Another process of the same store saw a sync fail: it left the marker.
        other = write_fault.WriteFault(tmp_path / "d")
        error = other.set(OSError(5, "Input/output error"))
        assert isinstance(error, StorageError) and error.code == "storage_unavailable"
        future = engine.submit_events(tenant, [EventIn(user_id="u", event="refused")])
        exc = future.exception(timeout=10)
        assert isinstance(exc, WritesStopped) and "Input/output error" in exc.message
        # Reads go on; the refused write is nowhere.
        rows = b"".join(engine.export_ndjson(tenant, 0, 2**62))
        assert b"before" in rows and b"refused" not in rows
        # Removing the marker does not undo what this engine already saw: a restart does.
        assert write_fault.clear(tmp_path / "d") is True
        again = engine.submit_events(tenant, [EventIn(user_id="u", event="still-refused")])
        assert isinstance(again.exception(timeout=10), WritesStopped)
    assert write_fault.clear(tmp_path / "d") is False
    with Engine.open(tmp_path / "d") as engine:
        assert engine.track(tenant, EventIn(user_id="u", event="after")).stored == 1


def test_a_marker_that_cannot_be_read_still_stops_the_writes(tmp_path):
    with Engine.open(tmp_path / "d") as engine:
        ws = engine.create_workspace("w")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        (tmp_path / "d" / write_fault.MARKER).mkdir()  # opening it for reading fails
        future = engine.submit_events(tenant, [EventIn(user_id="u", event="refused")])
        exc = future.exception(timeout=10)
        assert isinstance(exc, WritesStopped) and "unreadable" in exc.message
