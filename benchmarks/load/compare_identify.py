"""Identification throughput of this tree beside an earlier commit, in alternating rounds.

On a shared machine the same code measures thousands of identifications/s apart from one run to
the next, so a change is judged against the code before it in the same invocation: each round
runs `signalpost serve` (granian, LMDB on disk, 2 workers) once from a worktree of `--base` and
once from this checkout, in alternating order, each on a fresh store with the same 500
synthetic devices. Per server: a warm-up of the same load (first visits), then `wrk` at 32
connections for `--duration` seconds (returning devices), and the server's CPU per
identification from /proc (all its processes, user and system time). No request sends a stored
id, unless `--returning`: then the devices return as `identify.py`'s do, with the ids they were
answered (all but every seventh).

    python benchmarks/load/compare_identify.py --base e23e65c [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from identify import returning
from loadtools import alternating, cpu_seconds, lua_cycling, run_wrk, source_trees

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _synthetic_devices import Device
from report import emit


def _one_server(src: Path, tmp: Path, devices: list[dict], args: argparse.Namespace) -> dict:
    env = {"PYTHONPATH": str(src), "SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
    data = tmp / "data"
    ws = cli("workspace", "create", "--name", "bench", "--plan", "enterprise", data=data)
    key = ws["keys"]["pk_live"]
    with ServerProcess(data, workers=args.workers, env=env) as server:
        if args.returning:
            bodies = returning(server.url, key, devices)
        else:
            bodies = [json.dumps({"components": c}) for c in devices]
        script = tmp / "identify.lua"
        script.write_text(lua_cycling(bodies, key))
        url = f"{server.url}/v1/agent/identify"
        run_wrk(url, script, args.warmup, args.connections)
        pids = server.pids()
        cpu = cpu_seconds(pids)
        result = run_wrk(url, script, args.duration, args.connections)
        result["server_cpu_us"] = round(
            (cpu_seconds(pids) - cpu) / max(1, result["answered"]) * 1e6, 1
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--returning",
        action="store_true",
        help="devices return with their stored ids, as identify.py's do (default: none sent)",
    )
    args = parser.parse_args(argv)
    rng = random.Random(11)
    devices = [Device(rng, i).components(False) for i in range(500)]
    runs: dict[str, list[dict]] = {"base": [], "this": []}
    with source_trees(args.base) as (trees, base_rev):
        for name in alternating(args.rounds):
            with tempfile.TemporaryDirectory() as run_tmp:
                runs[name].append(_one_server(trees[name], Path(run_tmp), devices, args))
    results: dict = {
        "base": base_rev,
        "connections": args.connections,
        "stored_ids": "as identify.py" if args.returning else "none",
        "runs": runs,
    }
    for name in runs:
        results[f"{name}_rps"] = [r["rps"] for r in runs[name]]
        results[f"{name}_cpu_us"] = [r["server_cpu_us"] for r in runs[name]]
    gains = [t["rps"] / b["rps"] - 1 for b, t in zip(runs["base"], runs["this"], strict=True)]
    results["paired_gain_pct"] = [round(100 * g, 1) for g in gains]
    emit(
        results,
        f"identify at {args.connections} connections: {base_rev} "
        f"{statistics.median(results['base_rps']):.0f}/s, this tree "
        f"{statistics.median(results['this_rps']):.0f}/s (medians of {args.rounds}); "
        f"paired gain {statistics.median(gains) * 100:+.1f} % "
        f"(rounds {', '.join(f'{g:+.1f}' for g in results['paired_gain_pct'])}); "
        f"server CPU per identification {statistics.median(results['base_cpu_us']):.0f} → "
        f"{statistics.median(results['this_cpu_us']):.0f} µs",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
