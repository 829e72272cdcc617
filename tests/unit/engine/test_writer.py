"""Group commit: many waiting operations share one transaction; one failure stays its own."""

from __future__ import annotations

import threading

import pytest

from engine.errors import EngineClosed
from engine.events import EventIn
from engine.segments import list_segments


class _Boom:
    def apply(self, ctx):
        raise ValueError("this operation is broken")


class _Gate:
    """Holds the writer inside a transaction until released, so that others queue up."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, ctx):
        self.entered.set()
        self.release.wait(5)
        return "gate"


def test_waiting_operations_commit_together(engine, tenant):
    gate = _Gate()
    first = engine.writer.submit(gate)
    assert gate.entered.wait(5)
    futures = [
        engine.submit_events(tenant, [EventIn(user_id=f"u{i}", event="e")]) for i in range(50)
    ]
    gate.release.set()
    assert first.result(5) == "gate"
    assert all(f.result(5).stored == 1 for f in futures)
    with engine.store.read() as txn:
        segments = list_segments(txn, engine.store, tenant.prefix, "events")
    # All 50 were queued behind the gate: one group, one segment, one fsync.
    assert len(segments) == 1 and segments[0][1].rows == 50


def test_a_failing_operation_fails_alone(engine, tenant):
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(5)
    good = [engine.submit_events(tenant, [EventIn(user_id="u", event="e")]) for _ in range(3)]
    bad = engine.writer.submit(_Boom())
    more = engine.submit_events(tenant, [EventIn(user_id="v", event="e")])
    gate.release.set()
    with pytest.raises(ValueError):
        bad.result(5)
    assert [f.result(5).stored for f in [*good, more]] == [1, 1, 1, 1]
    assert engine.usage(tenant.workspace_id).events.live == 4


def test_submit_after_close_fails(tmp_path):
    from engine import Engine

    e = Engine.open(tmp_path / "d")
    e.close()
    with pytest.raises(EngineClosed):
        e.writer.submit(_Gate()).result(1)


def test_threads_submitting_concurrently_all_land_once(engine, tenant):
    def send(i):
        for j in range(20):
            engine.track(tenant, EventIn(user_id=f"t{i}", event="e", insert_id=f"{i}-{j}"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    lines = b"".join(engine.export_ndjson(tenant, 0, 2**62)).splitlines()
    assert len(lines) == 160
