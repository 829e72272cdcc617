"""Group commit: many waiting operations share one transaction; one failure stays its own."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine.errors import EngineClosed
from engine.events import EventIn
from engine.segments import list_segments
from engine.tenant import Tenant


class _Boom:
    def apply(self, ctx):
        raise ValueError("this operation is broken")


class _Gate:
    """Holds the writer inside a transaction until released, so that others queue up."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, ctx):
        self.entered.set()
        self.release.wait(60)  # released by the test; the bound only ends a failed one
        return "gate"


def test_waiting_operations_commit_together(engine, tenant):
    gate = _Gate()
    first = engine.writer.submit(gate)
    assert gate.entered.wait(60)
    futures = [
        engine.submit_events(tenant, [EventIn(user_id=f"u{i}", event="e")]) for i in range(50)
    ]
    gate.release.set()
    assert first.result(60) == "gate"
    assert all(f.result(60).stored == 1 for f in futures)
    with engine.store.read() as txn:
        segments = list_segments(txn, engine.store, tenant.prefix, "events")
    # All 50 were queued behind the gate: one group, one segment, one fsync.
    assert len(segments) == 1 and segments[0][1].rows == 50


def test_a_failing_operation_fails_alone(engine, tenant):
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(60)
    good = [engine.submit_events(tenant, [EventIn(user_id="u", event="e")]) for _ in range(3)]
    bad = engine.writer.submit(_Boom())
    more = engine.submit_events(tenant, [EventIn(user_id="v", event="e")])
    gate.release.set()
    with pytest.raises(ValueError):
        bad.result(60)
    assert [f.result(60).stored for f in [*good, more]] == [1, 1, 1, 1]
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


def _commits(engine) -> int:
    """LMDB's id of the last committed write transaction: one per commit (and fsync)."""
    return engine.store.env.info()["last_txnid"]


def test_concurrent_threads_get_their_own_results_with_fewer_commits_than_ops(engine, tenant):
    threads_n, per_thread = 8, 25
    before = _commits(engine)
    results: dict[int, list] = {}
    start = threading.Barrier(threads_n)

    def send(i):
        start.wait()
        out = []
        for j in range(per_thread):
            batch = [
                EventIn(user_id=f"t{i}", event="e", insert_id=f"{i}-{j}-{k}") for k in range(i)
            ]
            batch.append(EventIn(user_id=f"t{i}", event="e", insert_id=f"{i}-{j}-{i}"))
            # Every op repeats its first event once: each result must count its own rows.
            batch.append(EventIn(user_id=f"t{i}", event="e", insert_id=f"{i}-{j}-0"))
            out.append(engine.submit_events(tenant, batch, batch=True).result(10))
        results[i] = out

    threads = [threading.Thread(target=send, args=(i,)) for i in range(threads_n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ops = threads_n * per_thread
    for i in range(threads_n):
        assert len(results[i]) == per_thread
        for r in results[i]:
            # Thread 0's batch is [x-0, x-0]: one stored, one repeat. Others: i+1 distinct + 1.
            expected_stored = 1 if i == 0 else i + 1
            assert (r.accepted, r.stored, r.deduplicated) == (
                i + 2,
                expected_stored,
                i + 2 - expected_stored,
            )
    commits = _commits(engine) - before
    assert 1 <= commits < ops
    rows = b"".join(engine.export_ndjson(tenant, 0, 2**62)).splitlines()
    assert len(rows) == sum(per_thread * (1 if i == 0 else i + 1) for i in range(threads_n))


class _Put:
    def __init__(self, key: bytes, fail: bool = False) -> None:
        self.key, self.fail = key, fail

    def apply(self, ctx):
        ctx.txn.put(self.key, b"1", db=ctx.store.meta)
        if self.fail:
            raise ValueError("broken after writing")
        return self.key


def test_a_failing_operation_leaves_no_write_and_neighbours_keep_theirs(engine):
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(60)
    futures = [engine.writer.submit(_Put(b"test-key-%d" % i, fail=(i == 2))) for i in range(5)]
    gate.release.set()
    for i, fut in enumerate(futures):
        if i == 2:
            with pytest.raises(ValueError, match="broken after writing"):
                fut.result(60)
        else:
            assert fut.result(60) == b"test-key-%d" % i
    with engine.store.read() as txn:
        present = [txn.get(b"test-key-%d" % i, db=engine.store.meta) is not None for i in range(5)]
    assert present == [True, True, False, True, True]


def test_operations_queued_before_close_still_complete(tmp_path):
    from engine import Engine

    e = Engine.open(tmp_path / "d")
    gate = _Gate()
    e.writer.submit(gate)
    assert gate.entered.wait(60)
    futures = [e.writer.submit(_Put(b"k%d" % i)) for i in range(10)]
    closer = threading.Thread(target=e.close)
    closer.start()
    gate.release.set()
    closer.join(60)
    assert not closer.is_alive()
    assert [f.result(60) for f in futures] == [b"k%d" % i for i in range(10)]
    with pytest.raises(EngineClosed):
        e.track(Tenant("ws_closed", "live"), EventIn(user_id="u", event="e"))
    with Engine.open(tmp_path / "d") as again, again.store.read() as txn:
        assert all(txn.get(b"k%d" % i, db=again.store.meta) == b"1" for i in range(10))


def test_track_after_close_raises_engine_closed(tmp_path):
    from engine import Engine

    e = Engine.open(tmp_path / "d")
    ws = e.create_workspace("c")
    tenant = e.authenticate(ws.keys.plx_live).tenant
    e.close()
    with pytest.raises(EngineClosed) as info:
        e.track(tenant, EventIn(user_id="u", event="e"))
    assert info.value.code == "engine_closed"


def test_asyncio_callers_are_resolved_on_their_loop(engine, tenant):
    async def main():
        results = await asyncio.gather(
            *(engine.ingest(tenant, [EventIn(user_id=f"u{i}", event="e")]) for i in range(40)),
            engine.ingest(
                tenant,
                [EventIn(user_id="b", event="e"), EventIn(user_id="b", event="f")],
                batch=True,
            ),
        )
        return results

    before = _commits(engine)
    results = asyncio.run(main())
    assert [r.stored for r in results] == [1] * 40 + [2]
    # 41 ops were all queued before the loop yielded once: they share commits.
    assert _commits(engine) - before < 41
    assert engine.usage(tenant.workspace_id).events.live == 42


def test_a_cancelled_future_does_not_kill_the_writer(engine, tenant):
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(60)
    abandoned = engine.submit_events(tenant, [EventIn(user_id="u", event="gave-up")])
    # A caller that stops waiting (e.g. after a timeout) may cancel its pending future.
    abandoned.cancel()
    gate.release.set()
    later = engine.submit_events(tenant, [EventIn(user_id="u", event="later")])
    assert later.result(timeout=60).stored == 1


class _Fatal(BaseException):
    """Not an Exception: escapes the writer's handling of a failed operation."""


class _Escapes:
    def apply(self, ctx):
        raise _Fatal


def test_the_writer_outlives_an_operation_that_escapes_its_error_handling(engine, tenant):
    with pytest.raises(_Fatal):
        engine.writer.submit(_Escapes()).result(60)
    after = engine.submit_events(tenant, [EventIn(user_id="u", event="after")])
    assert after.result(60).stored == 1
