"""The limiter's added cost per request through the real server, at a fixed rate.

Two servers (two stores, two workers each, an `enterprise` workspace each): one with limits
off (the baseline), one counting every request against a ceiling no phase reaches. `hey` sends
single events to each in turn at --rate requests/s; the servers' CPU seconds per answered request
give the cost, and their difference the limiter's share. Rounds alternate the two.

    python benchmarks/load/limits.py [--rate 4000] [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtools import cpu_seconds, run_hey

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import emit


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (granian workers, the delivery process)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [pid] + [d for child in found.stdout.split() for d in _tree(int(child))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=4000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        body = tmpdir / "event.json"
        body.write_text(
            json.dumps({"user_id": "u1", "event": "page_viewed", "properties": {"p": 1}})
        )
        # Two stores and servers, the same enterprise workspace: limits off, and limits on with
        # a ceiling no phase reaches (every request counted, none refused).
        configs = {
            "limits_off": "[engine.rate_limits]\nenabled = false\n",
            "limited": "[engine.rate_limits.plans.enterprise]\n"
            "ingest = {requests = 1000000000, per_seconds = 1}\n",
        }
        servers, keys, pids = {}, {}, {}
        for name, text in configs.items():
            data = tmpdir / name
            ws = cli("workspace", "create", "--name", name, "--plan", "enterprise", data=data)
            (tmpdir / f"{name}.toml").write_text(text)
            env = {"SIGNALPOST_CONFIG": str(tmpdir / f"{name}.toml")}
            servers[name] = ServerProcess(data, workers=2, env=env).__enter__()
            keys[name] = ws["keys"]["plx_live"]
        phases: dict[str, list[dict]] = {name: [] for name in configs}
        try:
            for name in configs:  # warm-up; by its end every worker runs
                run_hey(f"{servers[name].url}/v1/events", body, keys[name], 2, args.rate)
            pids = {name: _tree(server.proc.pid) for name, server in servers.items()}
            for i in range(args.rounds):
                # Alternate which server goes first, so order effects cancel over the rounds.
                for name in list(configs)[:: 1 if i % 2 == 0 else -1]:
                    before = cpu_seconds(pids[name])
                    result = run_hey(f"{servers[name].url}/v1/events", body, keys[name],
                                     args.duration, args.rate)  # fmt: skip
                    used = cpu_seconds(pids[name]) - before
                    answered = result["rps"] * args.duration
                    result["server_cpu_us_per_request"] = round(1e6 * used / answered, 1)
                    phases[name].append(result)
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)
    summary = {
        name: {
            "rps": round(statistics.median(r["rps"] for r in runs), 1),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "server_cpu_us_per_request": statistics.median(
                r["server_cpu_us_per_request"] for r in runs
            ),
            "non_2xx": sum(r["non_2xx"] for r in runs),
        }
        for name, runs in phases.items()
    }
    added = round(summary["limited"]["server_cpu_us_per_request"]
                  - summary["limits_off"]["server_cpu_us_per_request"], 1)  # fmt: skip
    results = {
        "rate": args.rate,
        "rounds": phases,
        "median": summary,
        "added_us_per_request": added,
    }
    emit(results, f"limiter: {added} µs CPU added per request at {args.rate}/s (budget <= 20 µs); "
                  f"{summary}", args.out)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
