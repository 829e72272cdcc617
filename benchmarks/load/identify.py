"""Identification through the real server: throughput, and latency at a fixed 1,000 requests/s.

Starts `signalpost serve` (granian, LMDB on disk) on a fresh store with the benchmark baselines
enabled, then measures, in one invocation, POST /v1/agent/identify beside its same-run baseline
POST /v1/_baseline/agent/identify (decode, user agent, IP, signals and features, but no matching
and no storing):

- throughput: `wrk` at 32 connections, cycling through 500 synthetic devices returning as
  their agents send them: each device's first visit is made beforehand, and its later requests
  carry the visitor id and storage id it was answered, except every seventh device's, whose
  storage is gone (a private window, cleared site data), about the share of visits without a
  stored id in `drift.py`'s fleet; `--no-stored-id` sends none (a stress case: look-alike phones
  then get a new visitor on every request);
- latency at a fixed rate: `hey` at 1,000 requests/s (10 workers x 100/s), each such phase
  started once the server is idle again (the compaction after the overload phase before it);
- both again with --rules (default 100) live rules that every identification evaluates;
- rule propagation: a catch-all rule switched live/paused 20 times; after each write's answer,
  8 identifications on fresh connections (so both workers serve some) must all carry the new
  verdict. The time until the last of them answers stands beside the same 8 identifications
  with no change before them (baseline), with the server's own `propagationMs`.

Both tools are Debian packages (`apt-get install wrk hey`).

    python benchmarks/load/identify.py [--duration 10] [--workers 2] [--rules 100] [--out FILE]
                                       [--no-stored-id]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import httpx
from loadtools import lua_cycling, run_hey, run_wrk, wait_idle

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _synthetic_devices import Device
from report import emit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rules", type=int, default=100, help="live rules in the rules phases")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of the same load first")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-stored-id", action="store_true", help="no request sends one")
    args = parser.parse_args(argv)
    rng = random.Random(11)
    devices = [Device(rng, i).components(False) for i in range(500)]
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        ws = cli(
            "workspace", "create", "--name", "bench", "--plan", "enterprise", data=tmpdir / "data"
        )
        key = ws["keys"]["pk_live"]
        env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
        with ServerProcess(tmpdir / "data", workers=args.workers, env=env) as server:
            if args.no_stored_id:
                bodies = [json.dumps({"components": c}) for c in devices]
            else:
                bodies = returning(server.url, key, devices)
            script = tmpdir / "identify.lua"
            script.write_text(lua_cycling(bodies, key))
            one = tmpdir / "one.json"
            one.write_text(bodies[0])
            real, base = (
                f"{server.url}/v1/agent/identify",
                f"{server.url}/v1/_baseline/agent/identify",
            )

            def wrk(url: str) -> dict:
                # The warm-up sees each of the 500 devices first (their first visit creates the
                # visitor); the measured phase is returning devices, as in ingest.py's phases.
                if args.warmup:
                    run_wrk(url, script, args.warmup, args.connections)
                return run_wrk(url, script, args.duration, args.connections)

            def hey(url: str) -> dict:
                # Each fixed-rate phase starts from a settled server: the compaction that the
                # overload of the phase before left behind (tens of thousands of rows to move
                # and merge) finishes first, so the phase measures 1,000/s, not the catch-up.
                wait_idle(server.pids())
                if args.warmup:
                    run_hey(url, one, key, args.warmup, 1000)
                return run_hey(url, one, key, args.duration, 1000)

            results = {
                "workers": args.workers,
                "stored_ids": "none" if args.no_stored_id else f"all but 1 in {STORAGE_LOST}",
                "warmup_s": args.warmup,
                "throughput": {"baseline": wrk(base), "identify": wrk(real)},
                "at_1000_rps": {"baseline": hey(base), "identify": hey(real)},
            }
            secret = {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
            listed = httpx.get(f"{server.url}/v1/events?limit=1", headers=secret).json()
            results["stored_events_visible"] = bool(listed["data"])
            # The same two phases with live rules that every identification evaluates.
            add_rules(server.url, secret, args.rules)
            results["with_rules"] = {
                "rules": args.rules,
                "throughput": wrk(real),
                "at_1000_rps": hey(real),
            }
            results["propagation"] = propagation(server.url, secret, bodies[0])
    for phase in ("throughput", "at_1000_rps"):
        r = results[phase]
        r["ratio_rps"] = round(r["identify"]["rps"] / r["baseline"]["rps"], 3)
    t, f = results["throughput"]["identify"], results["at_1000_rps"]["identify"]
    r, rf = results["with_rules"]["throughput"], results["with_rules"]["at_1000_rps"]
    prop = results["propagation"]
    emit(
        results,
        f"identify: {t['rps']:.0f}/s at {args.connections} connections (budget >= 3000/s); "
        f"at 1000/s p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms (budget <= 10 ms); "
        f"with {args.rules} live rules {r['rps']:.0f}/s, at 1000/s p99 {rf['p99_ms']:.2f} ms; "
        f"rule change seen by every connection after {prop['seen_ms_median']:.1f} ms median "
        f"(max {prop['seen_ms_max']:.1f}, budget <= 50 ms)",
        args.out,
    )
    return 0


STORAGE_LOST = 7


def returning(url: str, key: str, devices: list[dict]) -> list[str]:
    """Each device's first visit, then the body its agent sends when it returns: the visitor id
    and storage id it was answered, unless its storage is gone (every STORAGE_LOST-th)."""
    bodies = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i, components in enumerate(devices):
            ua = {"User-Agent": components["userAgent"]}
            first = {"components": components, "storageId": f"s{i}"}
            answer = client.post("/v1/agent/identify", json=first, headers=ua)
            answer.raise_for_status()
            body: dict = {"components": components}
            if i % STORAGE_LOST:
                body |= {"storedVisitorId": answer.json()["visitorId"], "storageId": f"s{i}"}
            bodies.append(json.dumps(body))
    return bodies


def add_rules(url: str, headers: dict[str, str], n: int) -> None:
    """Live rules of realistic shapes that the benchmark's devices do not match."""
    rng = random.Random(5)
    leaves = [
        {"field": "signals.bot.detected", "operator": "equals", "value": True},
        {"field": "scores.suspect", "operator": "gte", "value": 90},
        {"field": "ip.country", "operator": "in", "value": ["KP", "IR"]},
        {"field": "velocity.distinctIps1h", "operator": "gt", "value": 50},
        {"field": "event.type", "operator": "equals", "value": "checkout"},
        {"field": "device.browser", "operator": "contains", "value": "Headless"},
        {"field": "confidence", "operator": "lt", "value": 0.05},
        {"field": "signals.tor", "operator": "equals", "value": True},
    ]
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(n):
            tree = {"operator": "AND", "rules": rng.sample(leaves, rng.randint(2, 4))}
            rule = {"name": f"bench {i}", "conditions": tree, "status": "live",
                    "priority": 10 + i, "action": {"verdict": "block"}}  # fmt: skip
            client.post("/v1/rules", json=rule).raise_for_status()


def propagation(url: str, headers: dict[str, str], body: str, rounds: int = 20) -> dict:
    """A rule that matches every device is switched live and paused in turn; after each write's
    answer, 8 fresh connections identify at once and must all see the change. Reports the time
    from the answer until the last of them has its verdict, and the server's propagationMs."""
    import concurrent.futures as cf
    import statistics
    import time

    catch_all = {"name": "catch all", "status": "paused", "priority": 0,
                 "conditions": {"field": "confidence", "operator": "gte", "value": 0},
                 "action": {"verdict": "challenge"}}  # fmt: skip
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        rule_id = client.post("/v1/rules", json=catch_all).json()["id"]

    def identify(fresh: httpx.Client) -> str | None:
        with fresh:
            return fresh.post("/v1/agent/identify", content=body).json()["verdict"]

    seen, reported, base = [], [], []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client, \
            cf.ThreadPoolExecutor(8) as pool:  # fmt: skip
        for i in range(rounds):
            status = "live" if i % 2 == 0 else "paused"
            # Clients made beforehand (making one costs milliseconds); each opens its connection
            # on its first request, after the write.
            fresh = [httpx.Client(base_url=url, headers=headers, timeout=30) for _ in range(8)]
            answer = client.put(f"/v1/rules/{rule_id}", json={"status": status}).json()
            t0 = time.perf_counter()
            verdicts = list(pool.map(identify, fresh))
            seen.append((time.perf_counter() - t0) * 1000)
            reported.append(answer["propagationMs"])
            want = "challenge" if status == "live" else "allow"
            assert verdicts == [want] * 8, (status, verdicts)
        # Baseline: the same 8 fresh identifications with no rule change before them.
        for _ in range(rounds):
            fresh = [httpx.Client(base_url=url, headers=headers, timeout=30) for _ in range(8)]
            t0 = time.perf_counter()
            list(pool.map(identify, fresh))
            base.append((time.perf_counter() - t0) * 1000)
    return {
        "rounds": rounds,
        "seen_ms_median": round(statistics.median(seen), 2),
        "seen_ms_max": round(max(seen), 2),
        "baseline_no_change_ms_median": round(statistics.median(base), 2),
        "every_first_request_saw_the_change": True,  # asserted above, every round
        "server_propagation_ms_median": round(statistics.median(reported), 3),
        "server_propagation_ms_max": round(max(reported), 3),
    }


if __name__ == "__main__":
    sys.exit(main())
