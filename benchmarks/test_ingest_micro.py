"""Per-event costs of ingestion, each group beside a baseline measured in the same run.

    pytest benchmarks --benchmark-only -o addopts=''

Groups (see conftest.py for the ratio printed at the end):

- decode-event: one typical body to an `EventIn` Struct / to a dict (baseline);
- prepare-event: `prepare()` of a decoded event / decoding alone (baseline);
- decode-batch: a 500-event body decoded, and decoded + prepared / to dicts (baseline);
- apply-batch: `IngestEvents.apply` + building the segment (`flush`) of 500 rows in a write
  transaction that is then aborted: the CPU of a group commit without its fsync / the 7
  already-encoded columns put in a write transaction, aborted (baseline: LMDB's share);
- store-batch: 500 events stored durably through the real writer (`Engine.track_batch`:
  validation, queue, apply, flush, commit, fsync) / one durable LMDB commit of the same
  number of bytes in the same store (baseline: the disk's floor); beside them the same commit
  under a new key each time, which grows the file as every new segment does;
- store-event: one event the same way / one durable LMDB commit of ~300 bytes (baseline);
- write-fault-check: the check every group makes for the store-wide stop of writes (a `stat`
  of the marker) / one event stored durably (baseline): its share of the smallest group.
"""

from __future__ import annotations

import itertools
import json

import msgspec
import pytest

from engine import CompactionConfig, Engine, EngineConfig
from engine import events as ev
from engine.columns import encode_fixed, encode_var
from engine.dictionary import Interner
from engine.timeutil import now_us
from engine.write_fault import WriteFault
from engine.writer import WriteContext

BODY = json.dumps(
    {
        "user_id": "usr_abc123",
        "event": "export_created",
        "timestamp": "2026-01-15T14:22:00Z",
        "properties": {"format": "csv", "row_count": 1450, "source": "dashboard"},
    }
).encode()
BATCH = json.dumps(
    {
        "events": [
            {
                "user_id": f"u{(i * 7919) % 5000}",
                "event": f"event_{i % 11}",
                "timestamp": f"2026-01-15T14:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}Z",
                "properties": {"path": f"/p/{i % 97}", "plan": "growth", "n": i},
            }
            for i in range(500)
        ]
    }
).encode()
CONFIG = EngineConfig()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine.open(
        tmp_path_factory.mktemp("micro"), EngineConfig(compaction=CompactionConfig(enabled=False))
    )
    yield e
    e.close()


@pytest.fixture(scope="module")
def tenant(engine):
    ws = engine.create_workspace("micro", "enterprise")
    return engine.authenticate(ws.keys.plx_live).tenant


def _raw_commit(engine: Engine, size: int, append: bool = False):
    """A durable LMDB commit of `size` bytes into the store's own file: under one scratch key
    (its pages are freed and reused, the file keeps its size), or under a new key each time
    (`append`: the file grows, as it does with every new segment)."""
    env, db, value = engine.store.env, engine.store.meta, b"x" * size
    keys = (b"bench-append-%09d" % i for i in itertools.count())

    def commit():
        with env.begin(write=True) as txn:
            txn.put(next(keys) if append else b"bench-scratch", value, db=db)

    return commit


# -- decoding and validation ---------------------------------------------------------------


@pytest.mark.benchmark(group="decode-event")
def test_baseline_decode_event_to_dict(benchmark):
    benchmark(msgspec.json.decode, BODY)


@pytest.mark.benchmark(group="decode-event")
def test_decode_event(benchmark):
    benchmark(ev.decode_event, BODY)


@pytest.mark.benchmark(group="prepare-event")
def test_baseline_prepare_event_decode_only(benchmark):
    benchmark(ev.decode_event, BODY)


@pytest.mark.benchmark(group="prepare-event")
def test_prepare_event(benchmark):
    event = ev.decode_event(BODY)
    received = now_us()
    benchmark(ev.prepare, event, received, CONFIG)


@pytest.mark.benchmark(group="decode-batch")
def test_baseline_decode_batch_to_dicts(benchmark):
    benchmark(msgspec.json.decode, BATCH)


@pytest.mark.benchmark(group="decode-batch")
def test_decode_batch(benchmark):
    benchmark(ev.decode_batch, BATCH, CONFIG)


@pytest.mark.benchmark(group="decode-batch")
def test_decode_and_prepare_batch(benchmark):
    benchmark(lambda: ev.prepare_batch(ev.decode_batch(BATCH, CONFIG), now_us(), CONFIG))


# -- the writer's work -----------------------------------------------------------------------


@pytest.mark.benchmark(group="apply-batch")
def test_baseline_put_encoded_segment(benchmark, engine):
    """The LMDB work alone: put the 7 already-encoded columns of a 500-row segment, abort."""
    store = engine.store
    rows = ev.prepare_batch(ev.decode_batch(BATCH, CONFIG), now_us(), CONFIG)
    ts, users, names, props, inserts, requests = zip(*rows, strict=True)
    encoded = {
        "ts": encode_fixed(ts, "i8"),
        "received": encode_fixed([0] * len(rows), "i8"),
        "user": encode_fixed([hash(u) % 5000 for u in users], "u4"),
        "event": encode_fixed([hash(e) % 11 for e in names], "u4"),
        "props": encode_var(props),
        "insert_id": encode_var(inserts),
        "request_id": encode_var(requests),
    }

    def put():
        txn = store.begin_write()
        try:
            for name, value in encoded.items():
                txn.put(b"bench-segment\x00" + name.encode(), value, db=store.columns)
        finally:
            txn.abort()

    benchmark(put)


@pytest.mark.benchmark(group="apply-batch")
def test_apply_and_flush_batch_of_500(benchmark, engine, tenant):
    """IngestEvents.apply + WriteContext.flush (intern, column builders, encode, LMDB puts),
    then abort: everything a group commit does except commit and fsync."""
    store = engine.store
    rows = ev.prepare_batch(ev.decode_batch(BATCH, CONFIG), now_us(), CONFIG)
    # Store it once: the users exist, as in the steady state.
    engine.track_batch(tenant, ev.decode_batch(BATCH, CONFIG))
    interner = Interner(store)

    def apply_and_flush():
        txn = store.begin_write()
        try:
            ctx = WriteContext(txn, store, interner)
            ev.IngestEvents(tenant, rows, now_us(), 10**12).apply(ctx)
            ctx.flush()
        finally:
            txn.abort()
        # The ids found were committed earlier: the writer's cache would keep them too.
        interner.committed()

    benchmark(apply_and_flush)


@pytest.mark.benchmark(group="store-batch")
def test_baseline_durable_commit_of_batch_bytes(benchmark, engine):
    # A 500-row events segment: 3 x 8-byte + 2 x 4-byte fixed columns, ~60-byte properties
    # and three offset arrays: about 46 KB.
    benchmark(_raw_commit(engine, 500 * (8 + 8 + 4 + 4 + 60 + 3 * 4)))


@pytest.mark.benchmark(group="store-batch")
def test_durable_commit_of_batch_bytes_appending(benchmark, engine):
    benchmark(_raw_commit(engine, 500 * (8 + 8 + 4 + 4 + 60 + 3 * 4), append=True))


@pytest.mark.benchmark(group="store-batch")
def test_store_batch_of_500_durably(benchmark, engine, tenant):
    batch = ev.decode_batch(BATCH, CONFIG)
    benchmark(engine.track_batch, tenant, batch)


@pytest.mark.benchmark(group="store-event")
def test_baseline_durable_commit_of_event_bytes(benchmark, engine):
    benchmark(_raw_commit(engine, 300))


@pytest.mark.benchmark(group="store-event")
def test_store_single_event_durably(benchmark, engine, tenant):
    event = ev.decode_event(BODY)
    benchmark(engine.track, tenant, event)


@pytest.mark.benchmark(group="write-fault-check")
def test_baseline_store_single_event_for_the_fault_check(benchmark, engine, tenant):
    event = ev.decode_event(BODY)
    benchmark(engine.track, tenant, event)


@pytest.mark.benchmark(group="write-fault-check")
def test_write_fault_check_per_group(benchmark, engine):
    fault = WriteFault(engine.store.path)
    assert fault.current() is None
    benchmark(fault.current)
