"""Event ingestion through the real server, beside a decode-and-discard baseline in the same run.

Creates a fresh data directory and an `enterprise` workspace, starts `signalpost serve` (granian,
LMDB on disk, durable mode) with SIGNALPOST_BENCHMARK_ENDPOINTS=1, and measures at 32
connections, each real endpoint right after its baseline (same decoding, validation and
authentication, nothing stored):

  (a) single events: POST /v1/_baseline/events, then POST /v1/events: requests/s, p50/p99;
  (b) 500-event batches: POST /v1/_baseline/events/batch, then POST /v1/events/batch: events/s;
  (c) server CPU seconds per 1,000 events: utime + stime of every process of the server's
      process group, read from /proc/<pid>/stat before and after each phase;
  (d) peak RSS of the server in each phase (VmHWM, reset before the phase): the largest
      process and the sum over processes, plus PSS (shared pages counted once).

After each real phase the server is left to go idle, then GET /v1/usage must show exactly the
events that were sent (every 2xx answer, plus requests still in flight when the load generator's
clock ran out), with no error answers. At the end an export counts the stored rows.

The load generator is Debian's `wrk` (`apt-get install wrk`), driven by a Lua script (bearer key,
POST bodies, a user id of its own per single event). Without wrk, a Python asyncio client (uvloop,
raw HTTP/1.1 keep-alive) stands in and the output says so: it takes much more of the shared CPU, so its figures are low.

    python benchmarks/load/ingest.py [--duration 10] [--connections 32] [--workers 2]
                                     [--out benchmarks/results/ingest-<date>-<N>w.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from loadtools import (
    cpu_seconds,
    have_wrk,
    lua_cycling,
    lua_single_events,
    own_cpu_seconds,
    peak_rss_mb,
    pss_mb,
    reset_peak_rss,
    run_python_client,
    run_wrk,
    single_event_body,
    system_busy_seconds,
    wait_idle,
)

from api.process import ServerProcess, cli

BENCH_DIR = Path(__file__).resolve().parents[1]
BATCH_SIZE = 500
BUDGETS = {
    "single_rps": 5_000,
    "single_p99_ms": 25.0,
    "batch_events_per_s": 300_000,
    "peak_rss_mb": 400.0,
}
EVENT_NAMES = ["page_viewed", "button_clicked", "signed_up", "export_created", "plan_changed",
               "invite_sent", "search_performed", "report_opened", "file_uploaded",
               "comment_added", "session_started"]  # fmt: skip


def batch_bodies(count: int, size: int, seed: int = 3) -> list[str]:
    """`count` different 500-event batches as an SDK sends them: 50,000 users, 11 event names,
    timestamps of the last hour, a few properties."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    bodies = []
    for b in range(count):
        events = []
        for i in range(size):
            ts = now - dt.timedelta(seconds=rng.randrange(3600), microseconds=rng.randrange(10**6))
            events.append(
                {
                    "user_id": f"u{rng.randrange(50_000)}",
                    "event": EVENT_NAMES[(b * size + i) % len(EVENT_NAMES)],
                    "timestamp": ts.isoformat().replace("+00:00", "Z"),
                    "properties": {
                        "path": f"/p/{rng.randrange(97)}",
                        "plan": rng.choice(["starter", "growth", "scale"]),
                        "n": b * size + i,
                    },
                }
            )
        bodies.append(json.dumps({"events": events}, separators=(",", ":")))
    return bodies


class PssSampler:
    """Samples the server's summed PSS once a second while a phase runs (PSS has no kernel
    high-water mark): shared pages such as the LMDB map counted once, not once per process."""

    def __init__(self, pids: list[int], interval: float = 1.0) -> None:
        self.pids, self.interval, self.peak = pids, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, pss_mb(self.pids))

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Bench:
    def __init__(self, server: ServerProcess, key: str, secret: str, workdir: Path, args) -> None:
        self.server, self.key, self.secret, self.args = server, key, secret, args
        self.client = "wrk" if have_wrk() and not args.python_client else "python-asyncio"
        self.bodies = batch_bodies(64, BATCH_SIZE)
        self.scripts = {
            "single": workdir / "single.lua",
            "batch": workdir / "batch.lua",
        }
        self.scripts["single"].write_text(lua_single_events(key))
        self.scripts["batch"].write_text(lua_cycling(self.bodies, key))
        self.encoded = [b.encode() for b in self.bodies]

    def load(self, path: str, kind: str, tag: str, duration: float) -> dict:
        url = f"{self.server.url}{path}"
        if self.client == "wrk":
            return run_wrk(url, self.scripts[kind], duration, self.args.connections,
                           threads=self.args.threads, script_args=(tag,))  # fmt: skip
        if kind == "single":
            return run_python_client(url, lambda n: single_event_body(tag, n), self.key, duration,
                                     self.args.connections)  # fmt: skip
        encoded = self.encoded
        return run_python_client(url, lambda n: encoded[n % len(encoded)], self.key, duration,
                                 self.args.connections)  # fmt: skip

    def usage(self) -> int:
        answer = httpx.get(
            f"{self.server.url}/v1/usage", headers={"Authorization": f"Bearer {self.secret}"}
        )
        answer.raise_for_status()
        return answer.json()["events"]["live"]

    def phase(self, name: str, kind: str, path: str, per_request: int, real: bool) -> dict:
        args = self.args
        self.load(path, kind, f"w{name}", args.warmup)  # warm-up; its events are not counted
        pids = self.server.pids()
        wait_idle(pids)
        stored_before = self.usage() if real else 0
        reset_peak_rss(pids)
        cpu_before = cpu_seconds(pids)
        busy_before, own_before = system_busy_seconds(), own_cpu_seconds()
        with PssSampler(pids) as pss:
            result = self.load(path, kind, name, args.duration)
        pids_after = self.server.pids()
        used = cpu_seconds(pids_after) - cpu_before
        own = own_cpu_seconds() - own_before
        # CPU the rest of the machine took meanwhile (other jobs on a shared box): a phase
        # that had to share the cores with them reads low.
        result["other_cpu_s"] = round(system_busy_seconds() - busy_before - used - own, 2)
        largest, total = peak_rss_mb(pids_after)
        result["pss_mb_at_end"] = round(pss_mb(pids_after), 1)
        result["pss_mb_peak_sampled"] = round(max(pss.peak, result["pss_mb_at_end"]), 1)
        result["server_processes"] = len(pids_after)
        if pids_after != pids:
            result["note"] = f"server processes changed during the phase: {pids} -> {pids_after}"
        # Requests in flight at the cutoff and background compaction finish here.
        result["cpu_s_after_phase_until_idle"] = round(wait_idle(pids_after), 2)
        events = result["ok_2xx"] * per_request
        result["events_per_s"] = round(result["rps"] * per_request, 1)
        result["server_cpu_s"] = round(used, 2)
        result["cpu_s_per_1000_events"] = round(used / events * 1000, 4) if events else None
        result["peak_rss_mb_largest"] = round(largest, 1)
        result["peak_rss_mb_sum"] = round(total, 1)
        if real:
            stored = self.usage() - stored_before
            sent = result["sent"]
            sent_events = None if sent is None else sent * per_request
            in_flight = (stored - events) // per_request
            result["verify"] = {
                "acknowledged_events": events,
                "sent_events": sent_events,
                "stored_events": stored,
                "stored_unanswered_requests": in_flight,
                "errors": result["non_2xx"] + result["socket_errors"],
                # Every 2xx answer is stored, nothing beyond what was sent is, and the excess
                # is at most one request per connection: those in flight when the load
                # generator's clock ran out (sent and stored, but their answers never read).
                "ok": result["non_2xx"] == 0
                and result["socket_errors"] == 0
                and stored >= events
                and (sent_events is None or stored <= sent_events)
                and (stored - events) % per_request == 0
                and in_flight <= self.args.connections,
            }
        return result

    def export_count(self) -> int:
        """Rows of an NDJSON export of everything stored."""
        n = 0
        headers = {"Authorization": f"Bearer {self.secret}"}
        with httpx.stream(
            "GET", f"{self.server.url}/v1/export", headers=headers, timeout=600
        ) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_bytes():
                n += chunk.count(b"\n")
        return n


def median_phase(phases: list[dict]) -> dict:
    """Median of every number over the rounds; a verification holds if it held in each."""
    if len(phases) == 1:
        return phases[0]
    out: dict = {}
    for key, value in phases[0].items():
        if key == "verify":
            out[key] = {k: sum(p[key][k] for p in phases) if k != "ok" else
                        all(p[key]["ok"] for p in phases) for k in value}  # fmt: skip
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = statistics.median(p[key] for p in phases)
        else:
            out[key] = value
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    wrk = shutil.which("wrk")
    version = None
    if wrk:
        version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=BENCH_DIR
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=BENCH_DIR
    ).stdout.strip()
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(mem) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": version,
        "git_commit": commit,
        # Uncommitted changes under src/ when the run started (the tree measured is not HEAD).
        "src_uncommitted": dirty.splitlines(),
    }


def summarise(results: dict) -> dict:
    """Ratios to the baselines and the budget verdicts."""
    s, sb = results["single"], results["single_baseline"]
    b, bb = results["batch"], results["batch_baseline"]
    ratios = {}
    for name, real, base in (("single", s, sb), ("batch", b, bb)):
        ratios[name] = {
            "throughput": _ratio(real["events_per_s"], base["events_per_s"]),
            "p50": _ratio(real["p50_ms"], base["p50_ms"]),
            "p99": _ratio(real["p99_ms"], base["p99_ms"]),
            "cpu_per_event": _ratio(real["cpu_s_per_1000_events"], base["cpu_s_per_1000_events"]),
            "peak_rss_largest": _ratio(real["peak_rss_mb_largest"], base["peak_rss_mb_largest"]),
        }
    phases = [s, sb, b, bb]
    peak_largest = max([p["peak_rss_mb_largest"] for p in phases] + [results["startup_rss_mb"]])
    peak_sum = max(p["peak_rss_mb_sum"] for p in phases)
    peak_pss = max(p["pss_mb_peak_sampled"] for p in phases)
    budgets = {
        "single_rps": {"budget": ">= 5000", "value": s["rps"],
                       "met": s["rps"] >= BUDGETS["single_rps"]},
        "single_p99_ms": {"budget": "<= 25", "value": s["p99_ms"],
                          "met": s["p99_ms"] <= BUDGETS["single_p99_ms"]},
        "batch_events_per_s": {"budget": ">= 300000", "value": b["events_per_s"],
                               "met": b["events_per_s"] >= BUDGETS["batch_events_per_s"]},
        "peak_rss_mb_largest_process": {"budget": "<= 400", "value": peak_largest,
                                        "met": peak_largest <= BUDGETS["peak_rss_mb"]},
        "peak_rss_mb_sum_of_processes": {"budget": "<= 400", "value": round(peak_sum, 1),
                                         "met": peak_sum <= BUDGETS["peak_rss_mb"]},
        "peak_pss_mb_sum_of_processes": {"budget": "<= 400", "value": round(peak_pss, 1),
                                         "met": peak_pss <= BUDGETS["peak_rss_mb"]},
    }  # fmt: skip
    return {"ratios": ratios, "budgets": budgets}


def table(results: dict) -> str:
    s, sb = results["single"], results["single_baseline"]
    b, bb = results["batch"], results["batch_baseline"]
    r, budgets = results["ratios"], results["budgets"]

    def yes(name: str) -> str:
        return "yes" if budgets[name]["met"] else "NO"

    def f(v: float | None, digits: int = 0) -> str:
        return "-" if v is None else f"{v:,.{digits}f}"

    rows = [
        ("single events, requests/s", f(sb["rps"]), f(s["rps"]), r["single"]["throughput"],
         ">= 5,000", yes("single_rps")),
        ("single events, p50 ms", f(sb["p50_ms"], 2), f(s["p50_ms"], 2), r["single"]["p50"],
         "", ""),
        ("single events, p99 ms", f(sb["p99_ms"], 2), f(s["p99_ms"], 2), r["single"]["p99"],
         "<= 25", yes("single_p99_ms")),
        ("single, server CPU s / 1,000 events", f(sb["cpu_s_per_1000_events"], 3),
         f(s["cpu_s_per_1000_events"], 3), r["single"]["cpu_per_event"], "", ""),
        ("single, peak RSS MB largest / sum",
         f"{sb['peak_rss_mb_largest']:.0f} / {sb['peak_rss_mb_sum']:.0f}",
         f"{s['peak_rss_mb_largest']:.0f} / {s['peak_rss_mb_sum']:.0f}",
         r["single"]["peak_rss_largest"], "", ""),
        ("batches of 500, events/s", f(bb["events_per_s"]), f(b["events_per_s"]),
         r["batch"]["throughput"], ">= 300,000", yes("batch_events_per_s")),
        ("batches, requests/s", f(bb["rps"]), f(b["rps"]), None, "", ""),
        ("batches, p50 ms per request", f(bb["p50_ms"], 1), f(b["p50_ms"], 1), r["batch"]["p50"],
         "", ""),
        ("batches, p99 ms per request", f(bb["p99_ms"], 1), f(b["p99_ms"], 1), r["batch"]["p99"],
         "", ""),
        ("batch, server CPU s / 1,000 events", f(bb["cpu_s_per_1000_events"], 4),
         f(b["cpu_s_per_1000_events"], 4), r["batch"]["cpu_per_event"], "", ""),
        ("batch, peak RSS MB largest / sum",
         f"{bb['peak_rss_mb_largest']:.0f} / {bb['peak_rss_mb_sum']:.0f}",
         f"{b['peak_rss_mb_largest']:.0f} / {b['peak_rss_mb_sum']:.0f}",
         r["batch"]["peak_rss_largest"], "", ""),
        ("peak RSS MB, largest process (run)", "", f(budgets["peak_rss_mb_largest_process"]["value"]),
         None, "<= 400", yes("peak_rss_mb_largest_process")),
        ("peak RSS MB, sum of processes", "", f(budgets["peak_rss_mb_sum_of_processes"]["value"]),
         None, "<= 400", yes("peak_rss_mb_sum_of_processes")),
        ("peak PSS MB, sum (sampled 1/s)", "", f(budgets["peak_pss_mb_sum_of_processes"]["value"]),
         None, "<= 400", yes("peak_pss_mb_sum_of_processes")),
    ]  # fmt: skip
    head = ("measure", "baseline", "stored", "ratio", "budget", "met")
    cells = [head] + [
        (a, b_, c, "" if d is None else f"{d:.2f}", e, g) for a, b_, c, d, e, g in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = [
        f"Ingestion: {results['workers']} worker(s), {results['connections']} connections, "
        f"{results['duration_s']} s per phase"
        + (f" (median of {results['rounds_run']} rounds)" if results["rounds_run"] > 1 else "")
        + f", client {results['client']}, "
        f"{results['machine']['nproc']} x {results['machine']['cpu_model']}"
    ]
    if results["client"] != "wrk":
        lines.append("NOTE: wrk not found; the Python client shares the CPU and caps the figures.")
    for i, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    other = {n: results[n]["other_cpu_s"] for n in ("single_baseline", "single", "batch_baseline",
                                                    "batch")}  # fmt: skip
    lines.append(
        "CPU seconds taken by other programs during each phase (noise): "
        + ", ".join(f"{n} {v:.1f}" for n, v in other.items())
    )
    for name in ("single", "batch"):
        v = results[name]["verify"]
        lines.append(
            f"verify {name}: acknowledged (2xx) {v['acknowledged_events']:,}, stored "
            f"{v['stored_events']:,} (+{v['stored_unanswered_requests']} requests in flight at "
            f"the cutoff), sent {v['sent_events']:,}, error answers {v['errors']} -> "
            + ("ok" if v["ok"] else "FAILED")
        )
    e = results["export"]
    if e.get("skipped"):
        lines.append("verify export: skipped")
    else:
        lines.append(
            f"verify export: {e['rows']:,} rows exported in {e['seconds']} s, usage counter "
            f"{e['usage']:,} -> " + ("ok" if e["ok"] else "FAILED")
        )
    return "\n".join(lines)


PLAN = [
    ("single_baseline", "single", "/v1/_baseline/events", 1, False),
    ("single", "single", "/v1/events", 1, True),
    ("batch_baseline", "batch", "/v1/_baseline/events/batch", BATCH_SIZE, False),
    ("batch", "batch", "/v1/events/batch", BATCH_SIZE, True),
]


def run_round(args: argparse.Namespace, number: int) -> dict:
    """One whole run: a fresh store and server, the four phases, the export check."""
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="signalpost-bench-") as tmp:
        tmpdir = Path(tmp)
        data = tmpdir / "data"
        ws = cli("workspace", "create", "--name", "bench", "--plan", "enterprise", data=data)
        key, secret = ws["keys"]["plx_live"], ws["keys"]["sk_live"]
        env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
        with ServerProcess(data, workers=args.workers, env=env) as server:
            bench = Bench(server, key, secret, tmpdir, args)
            result["client"] = bench.client
            if bench.client != "wrk":
                print("wrk not found: using the Python asyncio client", file=sys.stderr)
            result["startup_rss_mb"] = round(peak_rss_mb(server.pids())[0], 1)
            for name, kind, path, per_request, real in PLAN:
                print(f"round {number + 1}/{args.rounds}: {name} ({args.duration:g} s) ...",
                      file=sys.stderr, flush=True)  # fmt: skip
                result[name] = bench.phase(f"{number}{name}", kind, path, per_request, real)
            usage = bench.usage()
            if args.no_export_check:
                result["export"] = {"rows": None, "usage": usage, "ok": True, "skipped": True}
            else:
                print(f"round {number + 1}/{args.rounds}: export check ...", file=sys.stderr)
                started = time.perf_counter()
                rows = bench.export_count()
                result["export"] = {
                    "rows": rows,
                    "usage": usage,
                    "ok": rows == usage,
                    "seconds": round(time.perf_counter() - started, 1),
                }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before each phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole run (fresh store and server); report medians",
    )
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python asyncio client even with wrk"
    )
    parser.add_argument("--no-export-check", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/ingest-<date>-<N>w.json"
    )
    args = parser.parse_args(argv)
    today = dt.date.today().isoformat()
    out = args.out or BENCH_DIR / "results" / f"ingest-{today}-{args.workers}w.json"
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds_run": args.rounds,
        "machine": machine(),
    }
    rounds = [run_round(args, r) for r in range(args.rounds)]
    results["client"] = rounds[0]["client"]
    if results["client"] == "wrk":
        results["wrk_threads"] = args.threads
    results["startup_rss_mb"] = max(r["startup_rss_mb"] for r in rounds)
    for name, *_ in PLAN:
        results[name] = median_phase([r[name] for r in rounds])
    exports = [r["export"] for r in rounds]
    results["export"] = {
        "rows": None if exports[0].get("skipped") else sum(e["rows"] for e in exports),
        "usage": sum(e["usage"] for e in exports),
        "ok": all(e["ok"] for e in exports),
        "seconds": sum(e.get("seconds", 0) for e in exports),
        "skipped": exports[0].get("skipped", False),
    }
    if args.rounds > 1:
        results["rounds"] = rounds
    results.update(summarise(results))
    ok = results["single"]["verify"]["ok"] and results["batch"]["verify"]["ok"]
    ok = ok and results["export"]["ok"]
    results["verified"] = ok
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
