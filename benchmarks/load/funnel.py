"""A 3-step funnel over 10M events of 1M users: in-process, through the real server, and in
ClickHouse on the same events.

Builds the store directly (segments of generated columns, written through the engine's writer),
then measures, in one invocation:

- baseline: loading the columns a funnel reads (`scan.load` of ts, user, event over the range);
- in-process: `funnels.run` of the 3-step ordered funnel (load, step bits, sort, kernel, sums);
- through HTTP: POST /v1/funnels/query to `signalpost serve` on that store (median of --repeat);
- ClickHouse: the same events in chDB, `windowFunnel` over a MergeTree ordered by (user, ts),
  2 threads (`_clickhouse.py`), timed alternately with the HTTP query; both must count the same
  users per step.

    python benchmarks/load/funnel.py [--events 10000000] [--users 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from api.process import ServerProcess, cli
from engine import CompactionConfig, Engine, EngineConfig, dictionary, funnels
from engine.columns import encode_fixed, encode_var
from engine.scan import load
from engine.segments import SegmentMeta, write_segment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clickhouse import THREADS, ClickHouse, EventsFile

from report import emit

NAMES = ["dashboard_viewed", "filter_applied", "export_created", "report_shared", "login",
         "settings_opened", "invite_sent", "chart_added", "comment_added", "search", "logout"]  # fmt: skip
DAY_US = 86_400_000_000
T0 = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z
QUERY = {"steps": NAMES[:3], "from": "2026-03-01", "to": "2026-03-31", "order": "ordered"}


def build(
    data: Path, events: int, users: int, seed: int = 3, copy: EventsFile | None = None
) -> dict[str, str]:
    ws = cli("workspace", "create", "--name", "funnel", "--plan", "enterprise", data=data)
    rng = np.random.default_rng(seed)
    engine = Engine.open(data, EngineConfig(compaction=CompactionConfig(enabled=False)))
    tenant = engine.authenticate(ws["keys"]["plx_live"]).tenant

    class Intern:
        def apply(self, ctx):
            return [ctx.interner.intern(ctx.txn, tenant.prefix, dictionary.EVENT, n) for n in NAMES]

    codes = np.asarray(engine.writer.run(Intern()), np.uint32)
    # Earlier funnel steps are more frequent, as in real products.
    weights = np.array([8, 4, 2, 2, 6, 2, 1, 2, 1, 3, 4], float)
    step = 262_144
    for start in range(0, events, step):
        n = min(step, events - start)
        ts = np.sort(T0 + rng.integers(0, 30 * DAY_US, n)).astype(np.int64)
        user = rng.integers(0, users, n).astype(np.uint32)
        name = rng.choice(len(NAMES), n, p=weights / weights.sum())
        if copy is not None:
            copy.add(user, ts, name)
        cols = {
            "ts": encode_fixed(ts, "i8"),
            "received": encode_fixed(ts, "i8"),
            "user": encode_fixed(user, "u4"),
            "event": encode_fixed(codes[name], "u4"),
            "props": encode_var([b""] * n),
            "insert_id": encode_var([b""] * n),
            "request_id": encode_var([b""] * n),
        }
        meta = SegmentMeta(n, int(ts[0]), int(ts[-1]), 1, 0)

        class Put:
            def apply(self, ctx, cols=cols, meta=meta):
                write_segment(ctx.txn, ctx.store, tenant.prefix, "events", cols, meta)

        engine.writer.run(Put())
    engine.close()
    return ws["keys"]


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        data = Path(tmp) / "data"
        t = time.perf_counter()
        copy = EventsFile(Path(tmp) / "events.parquet")
        keys = build(data, args.events, args.users, copy=copy)
        copy.close()
        build_s = time.perf_counter() - t
        clickhouse = ClickHouse(Path(tmp) / "clickhouse", copy)
        from_us, to_us = T0, T0 + 30 * DAY_US
        window_us = 14 * DAY_US  # the query's default conversion window
        steps = list(range(len(QUERY["steps"])))
        clickhouse_users = clickhouse.funnel(steps, from_us, to_us, window_us)
        engine = Engine.open(data, EngineConfig(compaction=CompactionConfig(enabled=False)))
        tenant = engine.authenticate(keys["plx_live"]).tenant
        query = funnels.decode_query(json.dumps(QUERY).encode())

        def baseline():
            with engine.store.read() as txn:
                load(txn, engine.store, tenant.prefix, "events", ["user", "event"], from_us, to_us)

        answer = {}

        def in_process():
            with engine.store.read() as txn:
                answer["r"] = funnels.run(txn, engine.store, tenant, query)

        in_process()  # numba compile (or its disk cache) paid once, as in a server process
        base_ms = _timed(baseline, args.repeat)
        run_ms = _timed(in_process, args.repeat)
        engine.close()
        with ServerProcess(data, workers=1) as server:
            headers = {"Authorization": f"Bearer {keys['plx_live']}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                first = client.post("/v1/funnels/query", json=QUERY)
                assert first.status_code == 200, first.text
                http_ms, clickhouse_ms = [], []
                for _ in range(args.repeat):  # alternately, so both see the same machine
                    http_ms += _timed(
                        lambda: client.post("/v1/funnels/query", json=QUERY).raise_for_status(), 1
                    )
                    clickhouse_ms += _timed(
                        lambda: clickhouse.funnel(steps, from_us, to_us, window_us), 1
                    )
        clickhouse.close()
        users_per_step = [s.users for s in answer["r"].steps]
        assert [s["users"] for s in first.json()["steps"]] == users_per_step
        assert clickhouse_users == users_per_step, (clickhouse_users, users_per_step)
    results = {
        "events": args.events, "users": args.users, "build_s": round(build_s, 1),
        "baseline_load_ms": round(statistics.median(base_ms), 1),
        "in_process_ms": round(statistics.median(run_ms), 1),
        "http_ms": round(statistics.median(http_ms), 1),
        "ratio_in_process_to_baseline": round(statistics.median(run_ms) / statistics.median(base_ms), 2),
        "clickhouse_ms": round(statistics.median(clickhouse_ms), 1),
        "clickhouse_threads": THREADS,
        "http_ms_rounds": [round(x, 1) for x in http_ms],
        "clickhouse_ms_rounds": [round(x, 1) for x in clickhouse_ms],
        "ratio_http_to_clickhouse": round(statistics.median(http_ms) / statistics.median(clickhouse_ms), 2),
        "users_per_step": users_per_step,
    }  # fmt: skip
    emit(
        results,
        f"funnel: {results['http_ms']:.0f} ms through HTTP, ClickHouse (chDB, {THREADS} threads) "
        f"{results['clickhouse_ms']:.0f} ms, ratio {results['ratio_http_to_clickhouse']:.2f} "
        f"(budget <= 1.0); in-process {results['in_process_ms']:.0f} ms, baseline load "
        f"{results['baseline_load_ms']:.0f} ms",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
