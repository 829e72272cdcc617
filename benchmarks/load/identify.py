"""Identification through the real server: throughput, and latency at a fixed 1,000 requests/s.

Starts `signalpost serve` (granian, LMDB on disk) on a fresh store with the benchmark baselines
enabled, then measures, in one invocation, POST /v1/agent/identify beside its same-run baseline
POST /v1/_baseline/agent/identify (decode, user agent, IP, signals and features, but no matching
and no storing):

- throughput: `wrk` at 32 connections, cycling through 500 synthetic device payloads;
- latency at a fixed rate: `hey` at 1,000 requests/s (10 workers x 100/s).

Both tools are Debian packages (`apt-get install wrk hey`).

    python benchmarks/load/identify.py [--duration 10] [--workers 2] [--out results/identify.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import httpx
from loadtools import lua_cycling, run_hey, run_wrk

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from drift import Device
from report import emit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(11)
    bodies = [json.dumps({"components": Device(rng, i).components(False)}) for i in range(500)]
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        ws = cli(
            "workspace", "create", "--name", "bench", "--plan", "enterprise", data=tmpdir / "data"
        )
        key = ws["keys"]["pk_live"]
        script = tmpdir / "identify.lua"
        script.write_text(lua_cycling(bodies, key))
        one = tmpdir / "one.json"
        one.write_text(bodies[0])
        env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
        with ServerProcess(tmpdir / "data", workers=args.workers, env=env) as server:
            real, base = (
                f"{server.url}/v1/agent/identify",
                f"{server.url}/v1/_baseline/agent/identify",
            )
            results = {
                "workers": args.workers,
                "throughput": {
                    "baseline": run_wrk(base, script, args.duration, args.connections),
                    "identify": run_wrk(real, script, args.duration, args.connections),
                },
                "at_1000_rps": {
                    "baseline": run_hey(base, one, key, args.duration, 1000),
                    "identify": run_hey(real, one, key, args.duration, 1000),
                },
            }
            secret = {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
            listed = httpx.get(f"{server.url}/v1/events?limit=1", headers=secret).json()
            results["stored_events_visible"] = bool(listed["data"])
    for phase in ("throughput", "at_1000_rps"):
        r = results[phase]
        r["ratio_rps"] = round(r["identify"]["rps"] / r["baseline"]["rps"], 3)
    t, f = results["throughput"]["identify"], results["at_1000_rps"]["identify"]
    emit(
        results,
        f"identify: {t['rps']:.0f}/s at {args.connections} connections (budget >= 3000/s); "
        f"at 1000/s p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms (budget <= 10 ms)",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
