"""The run: setup, the kill and restart cycles, the settling at the end."""

from __future__ import annotations

import json
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _device_support import CHROME_UA
from _webhook_support import Receiver

from api.process import ServerProcess, cli
from engine.tenant import Tenant

from ._at_rest import check_profiles_at_rest
from ._config import (
    ACKED,
    DELIVERY_TIMEOUT,
    PRIMARY,
    RETRY_SCHEDULE,
    WRITERS,
    CrashConfig,
    HarnessError,
)
from ._config_writes import Config
from ._driver import Gate, Writer
from ._findings import Findings
from ._record import Ledger, Thing
from ._summary import summarize
from ._verify import Checks
from ._webhooks import Sink
from ._writes import Batches, Devices, Events, Traits


class Harness:
    def __init__(self, config: CrashConfig, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.data = directory / "data"
        self.rng = random.Random(f"{config.seed}/kills")
        self.findings = Findings()
        self.ledger = Ledger()
        self.gate = Gate()
        self.cohorts: dict[str, str] = {}
        self.late = False  # a cohort refresh was seen late
        self.kill_after: list[int] = []
        self.verified: Counter[str] = Counter()
        self.checked: Counter[str] = Counter()
        self.passes = 0
        self.traits_at_rest = 0
        self._began = time.monotonic()
        self._devices = 0
        self._device_lock = threading.Lock()
        self.server = ServerProcess(
            self.data,
            workers=config.workers,
            env={"SIGNALPOST_CONFIG": str(directory / "crash.toml")},
            log=directory / "server.log",
        )

    def say(self, text: str) -> None:
        if self.config.verbose:
            print(f"[crash {self.age():7.1f}s] {text}", file=sys.stderr, flush=True)

    def age(self) -> float:
        return time.monotonic() - self._began

    def next_device(self) -> int:
        with self._device_lock:
            self._devices += 1
            return self._devices

    def client(self, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}", "User-Agent": CHROME_UA}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=timeout)

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        with Receiver(self.directory) as receiver:
            self.receiver = receiver
            self.sink = Sink(receiver)
            writers: list[Writer] = []
            try:
                self._setup()
                writers = self._writers()
                self._cycles(len(writers))
                self._settle()
            except Exception:  # the summary says what happened, with what was seen so far
                self.findings.defect("run_aborted", "run", traceback.format_exc()[-2000:])
            finally:
                self.gate.stop()
                for writer in writers:
                    writer.thread.join(timeout=30)
                self.server.kill(hard=True)
            return summarize(self, time.monotonic() - began)

    def _setup(self) -> None:
        workspace = cli(
            "workspace", "create", "--name", "crash", "--plan", "enterprise", data=self.data
        )
        self.key = workspace["keys"]["sk_live"]
        self.tenant = Tenant(workspace["id"], "live")
        (self.directory / "crash.toml").write_text(self._config_toml())
        self.server.start(timeout=60)
        with self.client() as client:
            self._primary_webhook(client)
            self._fixed_cohort(client, "traits", {"type": "property", "property": "crash_mark",
                                                  "operator": "exists", "value": True})  # fmt: skip
            self._fixed_cohort(client, "exporters", {"type": "event", "event": "export",
                                                     "window": {"last_days": 30}})  # fmt: skip

    def _config_toml(self) -> str:
        # Every background task runs often: compaction merges every 4 segments, pending rows
        # move 5 times a second, sliding cohorts are evaluated in full every second.
        schedule = ", ".join(str(s) for s in RETRY_SCHEDULE)
        return "\n".join(
            [
                "pin_workers = false",  # the machine is shared: do not hold cores
                "[engine]",
                "cohort_refresh_seconds = 1",
                "[engine.compaction]",
                "fanout = 4",
                "drain_interval_seconds = 0.2",
                "[engine.webhooks]",
                "allow_private = true",
                f"ca_bundle = {json.dumps(str(self.receiver.ca_path))}",
                f"retry_schedule = [{schedule}]",
                "retry_jitter = 0.0",
                f"timeout_seconds = {DELIVERY_TIMEOUT}",
                "",
            ]
        )

    def _primary_webhook(self, client: httpx.Client) -> None:
        body = {"url": self.receiver.url(PRIMARY), "events": ["identification", "list_update"]}
        answer = client.post("/v1/webhooks", json=body)
        if answer.status_code != 201:
            raise HarnessError(f"webhook creation answered {answer.status_code}: {answer.text}")
        created = answer.json()
        self.sink.secret = created["secret"]
        thing = Thing("webhook", created["url"], ACKED, created["id"], fixed=True)
        thing.fields = {"url": [(created["url"], ACKED)], "status": [("active", ACKED)]}
        self.ledger.things.append(thing)

    def _fixed_cohort(self, client: httpx.Client, name: str, definition: dict[str, Any]) -> None:
        body = {"name": f"crash-{name}", "definition": definition}
        answer = client.post("/v1/cohorts", json=body)
        if answer.status_code != 201:
            raise HarnessError(f"cohort creation answered {answer.status_code}: {answer.text}")
        self.cohorts[name] = answer.json()["id"]
        thing = Thing("cohort", body["name"], ACKED, self.cohorts[name], fixed=True)
        thing.fields = {"name": [(body["name"], ACKED)]}
        self.ledger.things.append(thing)

    def _writers(self) -> list[Writer]:
        kinds: dict[str, type[Writer]] = {
            "events": Events, "batches": Batches, "traits": Traits, "config": Config,
        }  # fmt: skip
        writers = [kinds.get(name, Devices)(name, self) for name in WRITERS]
        for writer in writers:
            writer.thread.start()
        return writers

    def _cycles(self, writers: int) -> None:
        for _ in range(self.config.kills):
            self._load(self._kill_after())
            self.server.kill(hard=True)
            self.gate.close()
            self.findings.kills += 1
            self.say(f"kill {self.findings.kills} after {self.ledger.acks} acknowledged writes")
            self.gate.wait_parked(writers, timeout=60)
            self.traits_at_rest = check_profiles_at_rest(
                self.data, self.tenant, self.ledger, self.findings
            )
            self._restart()
            self._verify()
            self.say("restarted and verified")
        # The last server keeps running a while: its writes also wake the refreshes that a
        # restart leaves waiting for the next write.
        self._load(self.config.min_acks)
        self.gate.close()
        self.gate.wait_parked(writers, timeout=60)

    def _load(self, acks: int) -> None:
        """Let the writers run until `acks` more writes were acknowledged."""
        target = self.ledger.acks + acks
        self.gate.open()
        if not self.ledger.wait_acks(target, timeout=60):
            detail = {"acknowledged": self.ledger.acks, "target": target}
            self.findings.defect("stalled", f"before kill {self.findings.kills + 1}", detail)

    def _kill_after(self) -> int:
        """How many acknowledged writes the next kill comes after."""
        if self.rng.random() < self.config.early_share:
            acks = self.rng.randint(0, 5)
        else:
            acks = self.rng.randint(self.config.min_acks, self.config.max_acks)
        self.kill_after.append(acks)
        return acks

    def _restart(self) -> None:
        try:
            self.server.start(timeout=60)
        except RuntimeError as exc:
            raise HarnessError(f"restart after kill {self.findings.kills}: {exc}") from exc

    def _verify(self, final: bool = False) -> None:
        with self.client() as client:
            verified = Checks(self, client, final).run()
        self.passes += 1
        self.checked.update(verified)
        self.verified = verified

    def _settle(self) -> None:
        """After the last restart: deliveries arrive and discovery runs finish, within the
        deadline; then one more pass, a clean stop and a last read of the store at rest."""
        deadline = time.monotonic() + self.config.settle_seconds
        self._await_deliveries(deadline)
        self._await_runs(deadline)
        self._check_late_deliveries()
        self._verify(final=True)
        self.server.stop()
        self.traits_at_rest = check_profiles_at_rest(
            self.data, self.tenant, self.ledger, self.findings
        )

    def expected_deliveries(self) -> tuple[set[str], set[str]]:
        requests = {r for d in self.ledger.devices if d.deletion is None for r in d.requests}
        markers = {p.marker for p in self.ledger.patches if p.outcome == ACKED}
        return requests, markers

    def _await_deliveries(self, deadline: float) -> None:
        requests, markers = self.expected_deliveries()
        while True:
            got_requests, got_markers = self.sink.snapshot()
            lost_requests, lost_markers = requests - got_requests, markers - got_markers
            if not lost_requests and not lost_markers:
                break
            if time.monotonic() > deadline:
                for r in sorted(lost_requests):
                    self.findings.defect("delivery_lost", r, "identification")
                for m in sorted(lost_markers):
                    self.findings.defect("delivery_lost", m, "list_update")
                break
            time.sleep(0.1)
        for request, messages in self.sink.requests.items():
            if len(messages) > 1:
                self.findings.defect("delivery_enqueued_twice", request, sorted(messages))
        for message in self.sink.bad_signatures:
            self.findings.defect("delivery_bad_signature", message, "X-Prynt-Signature")

    def _check_late_deliveries(self) -> None:
        """A deleted visitor's identification may still finish an attempt that was on the wire;
        one sent later than an attempt can last carries data that should be gone."""
        grace = DELIVERY_TIMEOUT + 2
        for device in self.ledger.devices:
            if device.deletion != ACKED:
                continue
            for r in device.requests:
                late = [t - device.deleted_at for t in self.sink.arrivals.get(r, [])]
                if any(delay > grace for delay in late):
                    detail = {"visitor": device.visitor, "seconds_after": round(max(late), 2)}
                    self.findings.defect("delivered_after_deletion", r, detail)

    def _await_runs(self, deadline: float) -> None:
        with self.client() as client:
            checks = Checks(self, client)
            while True:
                runs = checks.runs()
                busy = [r for r, run in runs.items() if run["status"] in ("queued", "running")]
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        self.run_states = Counter(run["status"] for run in runs.values())
        for run_id in busy:
            self.findings.defect("discovery_run_stuck", run_id, runs[run_id]["status"])
        for run_id, run in runs.items():
            if run["status"] == "failed" and not str(run["error"]).startswith("Interrupted"):
                self.findings.defect("discovery_run_failed", run_id, run["error"])


def run_crash(config: CrashConfig, directory: Path | None = None) -> dict[str, Any]:
    """Run the harness in `directory` (a temporary one if None); return the summary."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return Harness(config, directory).run()
    with tempfile.TemporaryDirectory(prefix="signalpost-crash-") as tmp:
        return Harness(config, Path(tmp)).run()


def iter_defects(summary: dict[str, Any]) -> Iterator[str]:
    for defect in summary["defects"]:
        where = f"{defect['kind']} {defect['key']} (after kill {defect['after_kill']})"
        yield f"{where}: {json.dumps(defect['detail'])[:400]}"
