"""Event ingestion through the real server, beside a decode-and-discard baseline in the same run.

Starts `signalpost serve` (granian, LMDB on disk, durable mode) on a fresh store and an
`enterprise` workspace, with the benchmark baselines enabled, then measures at 32 connections:

1. single events, POST /v1/_baseline/events then POST /v1/events: requests/s, p50/p99;
2. 500-event batches, POST /v1/_baseline/events/batch then POST /v1/events/batch: events/s;
3. server CPU seconds per 1,000 events (all processes of the server) for each phase;
4. peak RSS of the server processes (VmHWM).

Every stored phase is checked: the usage counter must equal the events acknowledged with 2xx.
Needs Debian's `wrk`.

    python benchmarks/load/ingest.py [--duration 10] [--workers 2] [--out results/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import httpx
from loadtools import cpu_seconds, lua_cycling, lua_numbered_events, peak_rss_mb, pss_mb, run_wrk

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import emit


def _batch_body(size: int) -> str:
    events = [
        {"user_id": f"u{i % 977}", "event": f"event_{i % 11}",
         "properties": {"i": i, "path": f"/p/{i % 97}", "plan": "growth"}}
        for i in range(size)
    ]  # fmt: skip
    return json.dumps({"events": events})


def _phase(server: ServerProcess, url: str, script: Path, args, per_request: int) -> dict:
    pids = server.pids()
    before = cpu_seconds(pids)
    result = run_wrk(url, script, args.duration, args.connections)
    used = cpu_seconds(pids) - before
    events = result["requests"] * per_request
    result["events_per_s"] = round(result["rps"] * per_request, 1)
    result["cpu_s_per_1000_events"] = round(used / events * 1000, 4) if events else None
    return result


def _usage(server: ServerProcess, key: str) -> int:
    r = httpx.get(f"{server.url}/v1/usage", headers={"Authorization": f"Bearer {key}"})
    return r.json()["events"]["live"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        ws = cli(
            "workspace", "create", "--name", "bench", "--plan", "enterprise", data=tmpdir / "data"
        )
        key, secret = ws["keys"]["plx_live"], ws["keys"]["sk_live"]
        single = tmpdir / "single.lua"
        single.write_text(lua_numbered_events(key))
        batch = tmpdir / "batch.lua"
        batch.write_text(lua_cycling([_batch_body(500)], key))
        env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
        with ServerProcess(tmpdir / "data", workers=args.workers, env=env) as server:
            base = server.url
            run_wrk(f"{base}/v1/_baseline/events", single, 2, args.connections)  # warm-up
            results: dict = {"workers": args.workers, "connections": args.connections}
            results["single_baseline"] = _phase(
                server, f"{base}/v1/_baseline/events", single, args, 1
            )
            stored_before = _usage(server, secret)
            results["single"] = _phase(server, f"{base}/v1/events", single, args, 1)
            ok = results["single"]["requests"] - results["single"]["non_2xx"]
            results["single"]["stored_matches_acknowledged"] = (
                _usage(server, secret) - stored_before >= ok
            )
            results["batch_baseline"] = _phase(
                server, f"{base}/v1/_baseline/events/batch", batch, args, 500
            )
            stored_before = _usage(server, secret)
            results["batch"] = _phase(server, f"{base}/v1/events/batch", batch, args, 500)
            ok = (results["batch"]["requests"] - results["batch"]["non_2xx"]) * 500
            results["batch"]["stored_matches_acknowledged"] = (
                _usage(server, secret) - stored_before >= ok
            )
            largest, total = peak_rss_mb(server.pids())
            results["peak_rss_mb"] = {
                "largest_process": round(largest, 1),
                "all_processes": round(total, 1),
                "pss_all_processes_at_end": round(pss_mb(server.pids()), 1),
            }
    for name in ("single", "batch"):
        real, baseline = results[name], results[f"{name}_baseline"]
        real["ratio_to_baseline"] = round(real["events_per_s"] / baseline["events_per_s"], 3)
    s, b = results["single"], results["batch"]
    emit(
        results,
        f"single: {s['rps']:.0f} req/s p99 {s['p99_ms']:.1f} ms (budget >= 5000, <= 25 ms); "
        f"batch: {b['events_per_s']:.0f} events/s (budget >= 300000); "
        f"peak RSS {results['peak_rss_mb']['largest_process']} MB (budget <= 400)",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
