"""Auto-discovery runs: queued by hand or by plan, executed in the background, durable.

A run is a record in the store: queued → running → completed | failed. One process at a time
executes runs (an advisory file lock, as compaction): it recovers runs left `running` by a
process that died (marked failed, and queued again), queues the scheduled ones (daily on
`growth`, on `scale` again whenever new events arrived, at most every `continuous_seconds`),
and executes queued runs oldest first. The analysis reads one snapshot; only the records go
through the writer.
"""

from __future__ import annotations

import fcntl
import logging
import secrets
import threading
from typing import Literal

import lmdb
import msgspec

from . import discovery
from .config import DiscoveryConfig
from .errors import NotFound
from .segments import list_segments
from .store import Store, prefixed
from .tenant import Tenant
from .timeutil import iso, now_us
from .workspaces import list_all
from .writer import WriteContext, Writer

log = logging.getLogger("signalpost.discovery")
Status = Literal["queued", "running", "completed", "failed"]
DAY_US = discovery.DAY_US


class Run(msgspec.Struct):
    runId: str
    status: Status
    trigger: str  # manual, schedule or recovery
    queuedAt: str
    startedAt: str | None = None
    finishedAt: str | None = None
    usersAnalysed: int | None = None
    retained: int | None = None
    baselineRetention: float | None = None
    error: str | None = None
    events_seen: int = 0  # event rows stored when the run started (the schedule's "new events")
    queued_us: int = 0
    sequences: list[discovery.Finding] = []


class RunAnswer(msgspec.Struct):
    runId: str
    status: Status
    queuedAt: str
    startedAt: str | None
    finishedAt: str | None
    usersAnalysed: int | None
    retained: int | None
    baselineRetention: float | None
    error: str | None
    sequences: list[discovery.Finding]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Run)


def _key(prefix: bytes, queued_us: int, run_id: str) -> bytes:
    return b"d" + prefix + queued_us.to_bytes(8, "big") + run_id.encode()


def runs(txn: lmdb.Transaction, store: Store, prefix: bytes) -> list[tuple[bytes, Run]]:
    """Oldest first."""
    return [(k, _dec.decode(v)) for k, v in prefixed(txn, store.discovery, b"d" + prefix)]


def answer(run: Run, limit: int) -> RunAnswer:
    return RunAnswer(
        run.runId, run.status, run.queuedAt, run.startedAt, run.finishedAt, run.usersAnalysed,
        run.retained, run.baselineRetention, run.error, run.sequences[:limit],
    )  # fmt: skip


def latest_completed(txn: lmdb.Transaction, store: Store, prefix: bytes) -> Run:
    done = [r for _, r in runs(txn, store, prefix) if r.status == "completed"]
    if not done:
        raise NotFound(
            "No completed auto-discovery run yet; POST /v1/auto-discovery/trigger starts one."
        )
    return done[-1]


def get_run(txn: lmdb.Transaction, store: Store, prefix: bytes, run_id: str) -> Run:
    for _, run in runs(txn, store, prefix):
        if run.runId == run_id:
            return run
    raise NotFound(f"No auto-discovery run {run_id}.", field="runId")


class Trigger:
    """Queue a run unless one is queued or running: then answer that one."""

    def __init__(self, prefix: bytes, trigger: str = "manual") -> None:
        self.prefix, self.trigger = prefix, trigger

    def apply(self, ctx: WriteContext) -> Run:
        for _, run in reversed(runs(ctx.txn, ctx.store, self.prefix)):
            if run.status in ("queued", "running"):
                return run
        now = ctx.now_us
        run = Run("run_" + secrets.token_hex(6), "queued", self.trigger, iso(now), queued_us=now)
        ctx.txn.put(_key(self.prefix, now, run.runId), _enc.encode(run), db=ctx.store.discovery)
        return run


class _Put:
    def __init__(self, key: bytes, run: Run) -> None:
        self.key, self.run = key, run

    def apply(self, ctx: WriteContext) -> Run:
        ctx.txn.put(self.key, _enc.encode(self.run), db=ctx.store.discovery)
        return self.run


def _events_stored(txn: lmdb.Transaction, store: Store, prefix: bytes) -> int:
    return sum(m.rows for _, m in list_segments(txn, store, prefix, "events"))


class Runner:
    """The background thread of one process; only the lock holder does anything."""

    def __init__(
        self, store: Store, writer: Writer, config: DiscoveryConfig, start: bool = True
    ) -> None:
        self._store, self._writer, self._config = store, writer, config
        self._wake = threading.Event()
        self._stopping = False
        self._lock_path = store.path / "discovery.lock"
        self._thread = threading.Thread(target=self._run, name="signalpost-discovery", daemon=True)
        if start:
            self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            if self._stopping:
                return
            with open(self._lock_path, "a+b") as lock_file:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                try:
                    self.cycle()
                except Exception:
                    log.exception("auto-discovery cycle failed; it will be retried")

    def cycle(self) -> None:
        """Recover, schedule and execute, for every tenant (the caller holds the lock, so a run
        still marked running belongs to a process that died)."""
        for prefix, plan in self._tenants():
            self._recover(prefix)
            self._schedule(prefix, plan)
            self._execute(prefix)

    def _tenants(self) -> list[tuple[bytes, str]]:
        with self._store.read() as txn:
            spaces = list_all(txn, self._store)
        return [(Tenant(w.id, env).prefix, w.plan) for w in spaces for env in ("live", "test")]

    def _recover(self, prefix: bytes) -> None:
        with self._store.read() as txn:
            stuck = [(k, r) for k, r in runs(txn, self._store, prefix) if r.status == "running"]
        for key, run in stuck:
            run.status, run.finishedAt = "failed", iso(now_us())
            run.error = "Interrupted by a restart; queued again."
            self._writer.run(_Put(key, run))
            self._writer.run(Trigger(prefix, "recovery"))

    def _schedule(self, prefix: bytes, plan: str) -> None:
        if plan not in ("growth", "scale"):
            return
        with self._store.read() as txn:
            history = [r for _, r in runs(txn, self._store, prefix)]
            stored = _events_stored(txn, self._store, prefix)
        if not stored or any(r.status in ("queued", "running") for r in history):
            return
        last = history[-1] if history else None
        age = now_us() - last.queued_us if last else None
        if plan == "growth":
            due = last is None or age >= self._config.daily_seconds * 1_000_000
        else:
            due = last is None or (
                age >= self._config.continuous_seconds * 1_000_000 and stored != last.events_seen
            )
        if due:
            self._writer.run(Trigger(prefix, "schedule"))

    def _execute(self, prefix: bytes) -> None:
        with self._store.read() as txn:
            queued = [(k, r) for k, r in runs(txn, self._store, prefix) if r.status == "queued"]
        for key, run in queued:
            if self._stopping:
                return
            started = now_us()
            run.status, run.startedAt = "running", iso(started)
            self._writer.run(_Put(key, run))
            try:
                settings = discovery.Settings(
                    activation_days=self._config.activation_days,
                    retention_start_days=self._config.retention_start_days,
                    retention_end_days=self._config.retention_end_days,
                )
                with self._store.read() as txn:
                    run.events_seen = _events_stored(txn, self._store, prefix)
                    result = discovery.analyse(
                        txn, self._store, Tenant.from_prefix(prefix), settings, started
                    )
                run.status = "completed"
                run.usersAnalysed, run.retained = result.usersAnalysed, result.retained
                run.baselineRetention, run.sequences = result.baselineRetention, result.sequences
            except Exception as exc:
                log.exception("auto-discovery run failed")
                run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
            run.finishedAt = iso(now_us())
            self._writer.run(_Put(key, run))
