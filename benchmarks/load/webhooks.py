"""Webhooks through the real server: delivery throughput to a local HTTPS receiver, and what a
configured webhook adds to the identification latency at a fixed 1,000 requests/s.

One invocation, one data directory, in this order:

1. `signalpost serve` with the delivery worker switched off (`[engine.webhooks] deliver =
   false`) and one webhook subscribed to every event. Rounds alternate the webhook paused (the
   same-run baseline: nothing is enqueued) and active (every identification writes its
   delivery in its own transaction), `hey` at the fixed rate in each. Nothing is sent, so the
   difference is what the request path pays.
2. The same store under a server with delivery on: the backlog of phase 1 drains to the
   receiver; deliveries/s = deliveries / time from the first to the last arrival.
3. The same alternation while every event is delivered as it happens: the latency when the
   delivery process (and the receiver) share the machine, the share of one core they use,
   and how far deliveries lag behind.
4. The control for phase 3: rounds alternating nothing and a process that only burns the same
   share of one core (spinning and sleeping, scheduled like the receiver), the webhook paused.
   What phase 3 adds beyond this is what delivering costs requests beyond its CPU use.

Latency figures are medians over the rounds; p99s on a shared 2-core machine move by several
milliseconds from one run to the next, the paired rounds are what make the difference visible.
The receiver is an asyncio HTTPS server in a process of its own (certificate from trustme,
trusted through `[engine.webhooks] ca_bundle`); it answers 200 at once and counts message ids.
`hey` (Debian package) drives the fixed-rate phases.

    python benchmarks/load/webhooks.py [--duration 5] [--rounds 3] [--workers 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trustme
from loadtools import cpu_seconds, run_hey

from api.process import ServerProcess, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _synthetic_devices import Device
from report import emit

RECEIVER_NICE = 19
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
_MSG_ID = re.compile(rb"(?i)\r\nwebhook-id:\s*(\S+)")


class Receiver:
    """Keep-alive HTTPS on loopback in a process of its own; counts deliveries and duplicates.

    It stands for a remote host, so it takes only the CPU that the server under test and `hey`
    leave idle: it runs in a session of its own (Linux groups a session's processes for
    scheduling, and a process's niceness only counts inside its group) whose group niceness is
    19, as is its own. Figures before 2f5a980 had it as a thread of this process at
    niceness 19, which the grouping made count as much as `hey` against the server.
    """

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self.ca_path = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        leaf = directory / "leaf.pem"
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
            str(leaf)
        )
        ctx = multiprocessing.get_context("spawn")
        # port, deliveries received, distinct message ids, first and last arrival (monotonic)
        self._shared = ctx.Array("d", 5, lock=False)
        self._process = ctx.Process(target=_receive, args=(str(leaf), self._shared), daemon=True)
        self._process.start()
        while not self._shared[0]:
            time.sleep(0.01)
        self.port = int(self._shared[0])

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def count(self) -> int:
        return int(self._shared[1])

    @property
    def distinct(self) -> int:
        return int(self._shared[2])

    @property
    def first_at(self) -> float:
        return self._shared[3]

    @property
    def last_at(self) -> float:
        return self._shared[4]

    def close(self) -> None:
        self._process.terminate()
        self._process.join()

    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, limit: float) -> float:
        """Seconds until `count` distinct deliveries arrived (fails after `limit`)."""
        started = time.monotonic()
        while self.distinct < count:
            if time.monotonic() - started > limit:
                raise RuntimeError(f"receiver has {self.distinct} of {count} deliveries")
            time.sleep(0.01)
        return time.monotonic() - started


def _in_background() -> None:
    """Run the calling process as a remote host would be: in a session of its own (so in a
    scheduling group of its own) whose group niceness is 19, as is its own."""
    os.setsid()
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(f"{RECEIVER_NICE}\n")
    os.nice(RECEIVER_NICE)


def _receive(leaf: str, shared) -> None:
    _in_background()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf)
    ids: set[bytes] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                msg = _MSG_ID.search(head)
                ids.add(msg.group(1) if msg else b"")
                now = time.monotonic()
                shared[1] += 1
                shared[2] = len(ids)
                shared[4] = now
                shared[3] = shared[3] or now
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        shared[0] = server.sockets[0].getsockname()[1]
        await asyncio.Event().wait()

    asyncio.run(serve())


def _server(data: Path, config: Path, workers: int) -> ServerProcess:
    return ServerProcess(data, workers=workers, env={"SIGNALPOST_CONFIG": str(config)})


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _alternate(
    server: ServerProcess, hook: str, secret: dict, run, rounds: int, cpu_pids=None
) -> dict:
    """Rounds of (webhook paused, webhook active) at the fixed rate; paused is the same-run
    baseline: the endpoint exists but nothing is enqueued or sent for it. With `cpu_pids`,
    each run also reports the share of one core those processes used (`cpu_share`)."""
    phases: dict[str, list[dict]] = {"paused": [], "active": []}
    for _ in range(rounds):
        for status in ("paused", "active"):
            r = httpx.put(f"{server.url}/v1/webhooks/{hook}", json={"status": status},
                          headers=secret)  # fmt: skip
            r.raise_for_status()
            pids = cpu_pids() if cpu_pids else []
            cpu, started = cpu_seconds(pids), time.monotonic()
            result = run()
            if cpu_pids:
                result["cpu_share"] = round(
                    (cpu_seconds(pids) - cpu) / (time.monotonic() - started), 3
                )
            phases[status].append(result)
    out: dict = {status: runs for status, runs in phases.items()}
    for status in phases:
        out[f"{status}_p99_ms"] = _median([r["p99_ms"] for r in phases[status]])
        out[f"{status}_p50_ms"] = _median([r["p50_ms"] for r in phases[status]])
    out["added_p99_ms"] = _median(
        [a["p99_ms"] - p["p99_ms"] for p, a in zip(phases["paused"], phases["active"], strict=True)]
    )
    out["added_p50_ms"] = _median(
        [a["p50_ms"] - p["p50_ms"] for p, a in zip(phases["paused"], phases["active"], strict=True)]
    )
    return out


def _burn(spin_us: float, sleep_us: float) -> None:
    """Spin, sleep, forever, scheduled like the receiver: background CPU use that does nothing
    for the server, the control for what delivering costs the requests beyond its CPU."""
    _in_background()
    while True:
        end = time.perf_counter() + spin_us / 1e6
        while time.perf_counter() < end:
            pass
        time.sleep(sleep_us / 1e6)


def _burner_rounds(run, share: float, rounds: int) -> dict:
    """Rounds of (nothing, a burner using about `share` of one core); the webhook is paused."""
    spin = 200.0
    sleep = spin * (1 - share) / max(share, 0.01)
    ctx = multiprocessing.get_context("spawn")
    phases: dict[str, list[dict]] = {"idle": [], "burning": []}
    for _ in range(rounds):
        phases["idle"].append(run())
        burner = ctx.Process(target=_burn, args=(spin, sleep), daemon=True)
        burner.start()
        time.sleep(0.2)
        cpu, started = cpu_seconds([burner.pid]), time.monotonic()
        result = run()
        result["cpu_share"] = round(
            (cpu_seconds([burner.pid]) - cpu) / (time.monotonic() - started), 3
        )
        burner.terminate()
        burner.join()
        phases["burning"].append(result)
    out: dict = dict(phases)
    pairs = list(zip(phases["idle"], phases["burning"], strict=True))
    out["burner_cpu_share"] = _median([b["cpu_share"] for b in phases["burning"]])
    out["added_p99_ms"] = _median([b["p99_ms"] - i["p99_ms"] for i, b in pairs])
    out["added_p50_ms"] = _median([b["p50_ms"] - i["p50_ms"] for i, b in pairs])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--webhooks-setting", action="append", default=[], metavar="KEY=VALUE",
        help="an [engine.webhooks] setting for the delivering server (repeatable)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    body = json.dumps({"components": Device(random.Random(11), 0).components(False)})
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        receiver = Receiver(tmpdir)
        data = tmpdir / "data"
        ws = cli("workspace", "create", "--name", "bench", "--plan", "enterprise", data=data)
        key, secret = ws["keys"]["pk_live"], {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
        one = tmpdir / "one.json"
        one.write_text(body)
        settings = f'allow_private = true\nca_bundle = "{receiver.ca_path}"\n'
        quiet, live = tmpdir / "quiet.toml", tmpdir / "live.toml"
        quiet.write_text(f"[engine.webhooks]\n{settings}deliver = false\n")
        extra = "".join(f"{item}\n" for item in args.webhooks_setting)
        live.write_text(f"[engine.webhooks]\n{settings}{extra}")
        results: dict = {"workers": args.workers, "rate": args.rate, "rounds": args.rounds,
                         "webhooks_settings": args.webhooks_setting}  # fmt: skip

        with _server(data, quiet, args.workers) as server:
            url = f"{server.url}/v1/agent/identify"

            def run() -> dict:
                return run_hey(url, one, key, args.duration, args.rate)

            r = httpx.post(f"{server.url}/v1/webhooks", json={"url": receiver.url()},
                           headers=secret)  # fmt: skip
            r.raise_for_status()
            hook = r.json()["id"]
            run_hey(url, one, key, 2, args.rate)  # warm-up: caches, pages, first visitor
            results["enqueue_only"] = _alternate(server, hook, secret, run, args.rounds)
            backlog = sum(int(x["rps"] * args.duration) for x in results["enqueue_only"]["active"])

        with _server(data, live, args.workers) as server:
            # hey's counts are rounded; the receiver's message ids are the truth.
            drained = receiver.wait_for(int(backlog * 0.95), limit=600)
            time.sleep(1.0)
            total = receiver.distinct
            results["drain"] = {
                "deliveries": total,
                "seconds_to_95pct": round(drained, 2),
                "deliveries_per_s": round(total / (receiver.last_at - receiver.first_at), 1),
            }
            url = f"{server.url}/v1/agent/identify"
            before = receiver.distinct

            def delivering_pids() -> list[int]:
                pids = server.pids()
                return [receiver.pid] + [
                    p for p in pids if b"api.deliverer" in Path(f"/proc/{p}/cmdline").read_bytes()
                ]

            results["delivering"] = _alternate(
                server, hook, secret, run, args.rounds, delivering_pids
            )
            share = _median([r["cpu_share"] for r in results["delivering"]["active"]])
            results["delivering"]["delivery_cpu_share"] = share
            sent = sum(int(x["rps"] * args.duration) for x in results["delivering"]["active"])
            results["delivering"]["lag_after_last_phase_s"] = round(
                receiver.wait_for(before + int(sent * 0.99), limit=120), 2
            )
            time.sleep(1.0)
            page = httpx.get(f"{server.url}/v1/webhooks/{hook}", headers=secret).json()
            results["webhook_stats"] = {k: page[k] for k in ("successRate", "lastDeliveryAt")}
            results["duplicates"] = receiver.count - receiver.distinct
            # The control: the same share of a core used by a process that does nothing.
            results["burner"] = _burner_rounds(run, share, args.rounds)
        receiver.close()
    e, d, b = results["enqueue_only"], results["delivering"], results["burner"]
    emit(
        results,
        f"webhooks: drain {results['drain']['deliveries_per_s']:.0f} deliveries/s; identify at "
        f"{args.rate}/s, medians of {args.rounds} rounds: p99 {e['paused_p99_ms']:.2f} ms paused, "
        f"{e['active_p99_ms']:.2f} ms enqueueing (added {e['added_p99_ms']:+.2f} ms, budget "
        f"<= 1 ms); while delivering p99 {d['active_p99_ms']:.2f} ms (added "
        f"{d['added_p99_ms']:+.2f} ms, deliverer and receiver using "
        f"{d['delivery_cpu_share'] * 100:.0f} % of a core); a burner using "
        f"{b['burner_cpu_share'] * 100:.0f} % of a core added {b['added_p99_ms']:+.2f} ms",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
