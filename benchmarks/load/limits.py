"""The limiter's added cost per request through the real server, at 5,000 requests/s.

Four servers (four stores, two workers each, an `enterprise` workspace each), all started with
the benchmark endpoints:

- `limits_off`: rate limits disabled, the baseline;
- `leased`: ingestion counted against a limit no phase reaches and no burst, the shape of the
  ingestion limits of pro and scale (requests count against local leases of the shared counter);
- `burst`: the same with a per-second burst no phase reaches either, the shape of the device
  API limits at a scale where they lease too;
- `refusing`: a limit of 100 per second (starter's ingestion) under the full rate, so nearly
  every request is refused with a 429.

`h2load` sends single events to each in turn at --rate requests/s (rounds rotate the order).
Two figures per server and round: the server's CPU time per answered request (all processes),
whose difference to the baseline of the same round is the limiter's share (refused requests do
no storing, so for `refusing` it is not a comparison); and the time spent inside the limiter
itself, which each worker totals in place (`api/limiter_timing.py`).

    python benchmarks/load/limits.py [--rate 5000] [--duration 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
from loadtools import cpu_seconds, run_h2load

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import emit

CONFIGS = {
    "limits_off": "[engine.rate_limits]\nenabled = false\n",
    "leased": "[engine.rate_limits.plans.enterprise]\n"
    "ingest = {requests = 1000000000, per_seconds = 1}\n",
    "burst": "[engine.rate_limits.plans.enterprise]\n"
    "ingest = {requests = 1000000000, per_seconds = 60, burst = 1000000}\n",
    "refusing": "[engine.rate_limits.plans.enterprise]\n"
    "ingest = {requests = 100, per_seconds = 1}\n",
}


def limiter_totals(url: str, workers: int) -> tuple[int, int]:
    """(checks, nanoseconds) summed over the workers: each answers for itself, so ask on fresh
    connections until every worker has answered."""
    seen: dict[int, tuple[int, int]] = {}
    for _ in range(200):
        with httpx.Client(timeout=10) as client:
            body = client.get(f"{url}/v1/_baseline/limiter").json()
        seen[body["pid"]] = (body["calls"], body["ns"])
        if len(seen) == workers:
            break
    else:
        raise RuntimeError(f"only {len(seen)} of {workers} workers answered")
    return sum(c for c, _ in seen.values()), sum(n for _, n in seen.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        body = tmpdir / "event.json"
        body.write_text(
            json.dumps({"user_id": "u1", "event": "page_viewed", "properties": {"p": 1}})
        )
        servers, keys, pids = {}, {}, {}
        for name, text in CONFIGS.items():
            data = tmpdir / name
            ws = cli("workspace", "create", "--name", name, "--plan", "enterprise", data=data)
            (tmpdir / f"{name}.toml").write_text(text)
            env = {"SIGNALPOST_CONFIG": str(tmpdir / f"{name}.toml"),
                   "SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}  # fmt: skip
            servers[name] = ServerProcess(data, workers=args.workers, env=env).__enter__()
            keys[name] = ws["keys"]["plx_live"]
        phases: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        try:
            for name in CONFIGS:  # warm-up; by its end every worker runs
                run_h2load(f"{servers[name].url}/v1/events", body, keys[name], 3, args.rate)
            pids = {name: server.pids() for name, server in servers.items()}
            for i in range(args.rounds):
                # Rotate which server goes first, so order effects cancel over the rounds.
                order = list(CONFIGS)[i % 4 :] + list(CONFIGS)[: i % 4]
                for name in order:
                    url = servers[name].url
                    calls0, ns0 = limiter_totals(url, args.workers)
                    before = cpu_seconds(pids[name])
                    result = run_h2load(f"{url}/v1/events", body, keys[name],
                                        args.duration, args.rate)  # fmt: skip
                    used = cpu_seconds(pids[name]) - before
                    calls1, ns1 = limiter_totals(url, args.workers)
                    result["server_cpu_us_per_request"] = round(1e6 * used / result["answered"], 1)
                    checks = calls1 - calls0
                    result["limiter_checks"] = checks
                    result["limiter_us_per_check"] = (
                        round((ns1 - ns0) / checks / 1000, 2) if checks else None
                    )
                    phases[name].append(result)
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)

    def median(name: str, field: str) -> float | None:
        values = [r[field] for r in phases[name] if r[field] is not None]
        return round(statistics.median(values), 2) if values else None

    summary = {
        name: {
            "rps": median(name, "rps"),
            "mean_ms": median(name, "mean_ms"),
            "server_cpu_us_per_request": median(name, "server_cpu_us_per_request"),
            "limiter_us_per_check": median(name, "limiter_us_per_check"),
            "non_2xx": sum(r["non_2xx"] for r in phases[name]),
        }
        for name in CONFIGS
    }
    paired = {
        name: sorted(
            round(r["server_cpu_us_per_request"] - b["server_cpu_us_per_request"], 1)
            for r, b in zip(phases[name], phases["limits_off"], strict=True)
        )
        for name in ("leased", "burst")
    }
    results = {
        "rate": args.rate,
        "rounds": phases,
        "median": summary,
        "cpu_added_us_per_request_paired": paired,
    }
    line = "; ".join(
        f"{name}: limiter {summary[name]['limiter_us_per_check']} µs per request in place, "
        f"CPU {statistics.median(paired[name]):+.1f} µs per request vs limits off "
        f"(rounds {paired[name][0]:+.0f} to {paired[name][-1]:+.0f})"
        for name in ("leased", "burst")
    )
    line += (
        f"; refusing: limiter {summary['refusing']['limiter_us_per_check']} µs per request "
        f"in place, {summary['refusing']['non_2xx']} refused"
    )
    emit(results, f"at {args.rate}/s (budget <= 20 µs): {line}; {summary}", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
