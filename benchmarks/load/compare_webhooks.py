"""What delivering webhooks adds to the identification p99, this tree beside an earlier commit.

`webhooks.py` measures one tree; from one invocation to the next its added p99 moves by about a
millisecond on a shared 2-core machine, as much as the changes being judged. Here each round
runs `signalpost serve` (granian, 2 workers, LMDB on disk, delivery on) once from a worktree of
`--base` and once from this checkout, in alternating order, each on a fresh store, against the
same HTTPS receiver (`webhooks.Receiver`: a process of its own, at the lowest priority). Per
server, `--pairs` pairs of `hey` runs at a fixed 1,000 identifications/s alternate the webhook
paused (nothing enqueued or sent: the baseline) and active (every identification is delivered
as it happens). Reported per tree: the median of the pairs' added p99 and p50, and the delivery
process's CPU per delivery (user and system time from /proc).

`--base-env` / `--this-env` KEY=VALUE (repeatable) set environment variables of one side's
server, for comparing settings of this checkout (`--base .`).

    python benchmarks/load/compare_webhooks.py --base f1b4b9d [--rounds 3] [--pairs 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
from loadtools import alternating, cpu_seconds, run_hey, source_trees
from webhooks import Receiver

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _synthetic_devices import Device
from report import emit


def _deliverer(pids: list[int]) -> list[int]:
    return [p for p in pids if b"api.deliverer" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _one_server(src: Path, env: dict, tmp: Path, receiver: Receiver, args) -> dict:
    data = tmp / "data"
    env = {"PYTHONPATH": str(src), **env}
    ws = cli("workspace", "create", "--name", "bench", "--plan", "enterprise", data=data, env=env)
    key, secret = ws["keys"]["pk_live"], {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
    body = tmp / "one.json"
    body.write_text(json.dumps({"components": Device(random.Random(11), 0).components(False)}))
    config = tmp / "live.toml"
    config.write_text(
        f'[engine.webhooks]\nallow_private = true\nca_bundle = "{receiver.ca_path}"\n'
    )
    pairs: list[dict] = []
    with ServerProcess(data, workers=2, env={**env, "SIGNALPOST_CONFIG": str(config)}) as server:
        url = f"{server.url}/v1/agent/identify"
        r = httpx.post(f"{server.url}/v1/webhooks", json={"url": receiver.url()}, headers=secret)
        r.raise_for_status()
        hook = r.json()["id"]
        run_hey(url, body, key, 2, args.rate)  # warm-up, delivered too
        deliverer = _deliverer(server.pids())
        for _ in range(args.pairs):
            pair = {}
            for status in ("paused", "active"):
                httpx.put(f"{server.url}/v1/webhooks/{hook}", json={"status": status},
                          headers=secret).raise_for_status()  # fmt: skip
                before, cpu = receiver.distinct, cpu_seconds(deliverer)
                rx_cpu = cpu_seconds([receiver.pid])
                pair[status] = run_hey(url, body, key, args.duration, args.rate)
                pair[status]["deliverer_cpu_s"] = round(cpu_seconds(deliverer) - cpu, 2)
                pair[status]["receiver_cpu_s"] = round(cpu_seconds([receiver.pid]) - rx_cpu, 2)
                pair[status]["delivered"] = receiver.distinct - before
            pairs.append(pair)
    added = [p["active"]["p99_ms"] - p["paused"]["p99_ms"] for p in pairs]
    added50 = [p["active"]["p50_ms"] - p["paused"]["p50_ms"] for p in pairs]
    sent = sum(p["active"]["delivered"] for p in pairs)
    cpu = sum(p["active"]["deliverer_cpu_s"] for p in pairs)
    rx_cpu = sum(p["active"]["receiver_cpu_s"] for p in pairs)
    return {
        "pairs": pairs,
        "added_p99_ms": round(statistics.median(added), 2),
        "added_p50_ms": round(statistics.median(added50), 2),
        "deliverer_cpu_us_per_delivery": round(cpu / max(1, sent) * 1e6, 1),
        "receiver_cpu_us_per_delivery": round(rx_cpu / max(1, sent) * 1e6, 1),
    }


def _env(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2, help="paused/active pairs per server")
    parser.add_argument("--duration", type=int, default=5, help="seconds per hey run")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--base-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--this-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"base": [], "this": []}
    envs = {"base": _env(args.base_env), "this": _env(args.this_env)}
    with source_trees(args.base) as (trees, base_rev), tempfile.TemporaryDirectory() as tmp:
        receiver = Receiver(Path(tmp))
        try:
            for name in alternating(args.rounds):
                with tempfile.TemporaryDirectory() as run_tmp:
                    run = _one_server(trees[name], envs[name], Path(run_tmp), receiver, args)
                    runs[name].append(run)
                    print(name, run["added_p99_ms"], run["added_p50_ms"],
                          run["deliverer_cpu_us_per_delivery"],
                          run["receiver_cpu_us_per_delivery"], file=sys.stderr)  # fmt: skip
        finally:
            receiver.close()
    results: dict = {"base": base_rev, "envs": envs, "rate": args.rate, "runs": runs}
    summary = {}
    for name in runs:
        for measure in ("added_p99_ms", "added_p50_ms", "deliverer_cpu_us_per_delivery"):
            values = [r[measure] for r in runs[name]]
            results[f"{name}_{measure}"] = values
            summary[(name, measure)] = statistics.median(values)
    emit(
        results,
        f"added identify p99 at {args.rate}/s while delivering, medians of {args.rounds} "
        f"servers x {args.pairs} pairs: {base_rev} {summary['base', 'added_p99_ms']:+.2f} ms "
        f"(p50 {summary['base', 'added_p50_ms']:+.2f}), this tree "
        f"{summary['this', 'added_p99_ms']:+.2f} ms (p50 {summary['this', 'added_p50_ms']:+.2f}); "
        f"delivery CPU per delivery {summary['base', 'deliverer_cpu_us_per_delivery']:.0f} → "
        f"{summary['this', 'deliverer_cpu_us_per_delivery']:.0f} µs",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
