"""The embedded engine: pre-built 500-event batches stored durably through the in-process API.

No HTTP: the batches are decoded before the clock starts, as an application that builds
`EventIn` lists would hand them over. Measured in one invocation, on a fresh store each:

- baseline: one durable LMDB commit per batch of as many bytes as its stored segment (the
  disk's and LMDB's floor for the same commits);
- engine: every batch submitted at once (`Engine.submit_events`, so the writer groups them into
  commits as it does under load), timed until the last is durable; with an `insert_id` on every
  event, and without.

    python benchmarks/load/embedded.py [--batches 400] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine import CompactionConfig, Engine, EngineConfig
from engine import events as ev

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import emit

BATCH = 500
CONFIG = EngineConfig(compaction=CompactionConfig(enabled=False))
SEGMENT_BYTES = BATCH * (8 + 8 + 4 + 4 + 60 + 3 * 4)  # as test_ingest_micro's store-batch group


def _body(number: int, insert_ids: bool) -> bytes:
    events = [
        {
            "user_id": f"u{(number * BATCH + i) * 7919 % 5000}",
            "event": f"event_{i % 11}",
            "timestamp": f"2026-01-15T14:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}Z",
            **({"insert_id": f"b{number}-{i}"} if insert_ids else {}),
            "properties": {"path": f"/p/{i % 97}", "plan": "growth", "n": i},
        }
        for i in range(BATCH)
    ]
    return json.dumps({"events": events}).encode()


def _engine_rate(batches: int, insert_ids: bool) -> float:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        engine = Engine.open(Path(tmp), CONFIG)
        try:
            ws = engine.create_workspace("embedded", "enterprise")
            tenant = engine.authenticate(ws.keys.plx_live).tenant
            built = [ev.decode_batch(_body(n, insert_ids), CONFIG) for n in range(batches)]
            start = time.perf_counter()
            futures = [engine.submit_events(tenant, b, batch=True, decoded=True) for b in built]
            stored = sum(f.result().stored for f in futures)
            elapsed = time.perf_counter() - start
        finally:
            engine.close()
    assert stored == batches * BATCH
    return stored / elapsed


def _baseline_rate(batches: int) -> float:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        engine = Engine.open(Path(tmp), CONFIG)
        try:
            env, db, value = engine.store.env, engine.store.meta, b"x" * SEGMENT_BYTES
            start = time.perf_counter()
            for n in range(batches):
                with env.begin(write=True) as txn:
                    txn.put(b"bench-%09d" % n, value, db=db)
            elapsed = time.perf_counter() - start
        finally:
            engine.close()
    return batches * BATCH / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rounds: dict[str, list[float]] = {"baseline": [], "with_insert_ids": [], "without": []}
    for _ in range(args.rounds):  # alternately, so all three see the same machine
        rounds["baseline"].append(_baseline_rate(args.batches))
        rounds["with_insert_ids"].append(_engine_rate(args.batches, True))
        rounds["without"].append(_engine_rate(args.batches, False))
    median = {name: statistics.median(values) for name, values in rounds.items()}
    results = {
        "batches": args.batches,
        "events_per_batch": BATCH,
        "events_per_second": {name: round(value) for name, value in median.items()},
        "rounds": {name: [round(v) for v in values] for name, values in rounds.items()},
        "ratio_to_baseline": {
            name: round(median[name] / median["baseline"], 3)
            for name in ("with_insert_ids", "without")
        },
    }
    emit(
        results,
        f"embedded: {median['without']:,.0f} events/s without insert_ids, "
        f"{median['with_insert_ids']:,.0f} with (budget >= 1,000,000); baseline durable "
        f"commits {median['baseline']:,.0f} events/s",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
