"""Group commit: one writer thread per process commits every waiting operation in one transaction.

Requests hand operations to `Writer.submit`; the writer drains the queue, applies them all in one
LMDB write transaction, commits (one fsync in durable mode) and only then resolves their futures.
LMDB serialises the writers of several processes, so `--workers N` shares one store safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

import lmdb

from .columns import VAR, encode_fixed, encode_var
from .dictionary import Interner
from .errors import EngineClosed, SignalpostError, StorageFull
from .segments import SCHEMAS, SegmentMeta, write_segment
from .store import Store, is_full, translate_errors
from .write_fault import WriteFault

log = logging.getLogger("signalpost.writer")


def encode_columns(table: str, columns: dict[str, list[Any]]) -> dict[str, bytes]:
    """Column lists (a table's values by name) as the encoded values of a segment."""
    schema = SCHEMAS[table]
    return {
        name: encode_var(values) if schema[name] == VAR else encode_fixed(values, schema[name])
        for name, values in columns.items()
    }


class WriteOp(Protocol):
    def apply(self, ctx: WriteContext) -> Any: ...


class _TableBuilder:
    __slots__ = ("columns", "rows")

    def __init__(self, table: str) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in SCHEMAS[table]}
        self.rows = 0


class WriteContext:
    """What an operation sees while the writer applies it: the transaction and the builders."""

    def __init__(
        self,
        txn: lmdb.Transaction,
        store: Store,
        interner: Interner,
        caches: dict[str, Any] | None = None,
    ) -> None:
        self.txn = txn
        self.store = store
        self.interner = interner
        # Per-process caches that outlive one group (e.g. compiled rules), owned by the writer.
        self.caches = caches if caches is not None else {}
        self.now_us = time.time_ns() // 1000
        self._builders: dict[tuple[bytes, str], _TableBuilder] = {}
        self.written: set[tuple[bytes, str]] = set()
        self._counters: dict[bytes, int] = {}

    def count(self, key: bytes, n: int) -> None:
        """Add `n` to a counter in the usage database when the group commits."""
        self._counters[key] = self._counters.get(key, 0) + n

    def columns(self, prefix: bytes, table: str) -> dict[str, list[Any]]:
        """Column lists to append rows to; they become one new segment at commit."""
        builder = self._builders.get((prefix, table))
        if builder is None:
            builder = self._builders[(prefix, table)] = _TableBuilder(table)
        return builder.columns

    def drop_pending(self, prefix: bytes, table: str, column: str, value: Any) -> None:
        """Drop unwritten rows whose `column` equals `value` (a deletion in the same group)."""
        builder = self._builders.get((prefix, table))
        if builder is None:
            return
        keep = [i for i, v in enumerate(builder.columns[column]) if v != value]
        for name, values in builder.columns.items():
            builder.columns[name] = [values[i] for i in keep]

    def flush(self) -> None:
        for (prefix, table), builder in self._builders.items():
            cols = builder.columns
            ts = cols["ts"]
            if not ts:
                continue
            meta = SegmentMeta(len(ts), min(ts), max(ts), 0, self.now_us)
            write_segment(self.txn, self.store, prefix, table, encode_columns(table, cols), meta)
            self.written.add((prefix, table))
        self.interner.commit(self.txn)
        usage = self.store.usage
        for key, n in self._counters.items():
            raw = self.txn.get(key, db=usage)
            total = (int.from_bytes(raw, "little") if raw else 0) + n
            self.txn.put(key, total.to_bytes(8, "little"), db=usage)


class _CommitFailed(Exception):
    """LMDB could not write or sync a commit's pages (not a full disk): its durability is
    unknown. The lmdb error is the cause."""


# A short write fills the disk to the last block; whatever is left is below this.
_FULL_DISK_BYTES = 1 << 20
_STOP = object()
_Item = tuple[WriteOp, "Future[Any] | asyncio.Future[Any]"]
_Outcome = tuple["Future[Any] | asyncio.Future[Any]", Any, BaseException | None]


def _deliver(outcomes: list[_Outcome]) -> None:
    """Resolve futures: thread futures directly, asyncio futures in one batch per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        fut = outcome[0]
        if isinstance(fut, Future):
            # A caller may have cancelled while waiting; its operation is committed anyway.
            if not fut.set_running_or_notify_cancel():
                continue
            if outcome[2] is None:
                fut.set_result(outcome[1])
            else:
                fut.set_exception(outcome[2])
        else:
            by_loop.setdefault(fut.get_loop(), []).append(outcome)
    for loop, batch in by_loop.items():
        # A closed loop has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve_on_loop, batch)


def _resolve_on_loop(batch: list[_Outcome]) -> None:
    for fut, result, exc in batch:
        if fut.done():
            continue
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


class Writer:
    def __init__(
        self,
        store: Store,
        *,
        max_group_ops: int = 4096,
        group_wait_us: int = 0,
        on_commit: Callable[[set[tuple[bytes, str]]], None] | None = None,
    ) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_group = max_group_ops
        self._group_wait = group_wait_us / 1e6
        self._interner = Interner(store)
        self._caches: dict[str, Any] = {}
        self._on_commit = on_commit
        self._fault = WriteFault(store.path)
        self._closed = False
        self._gate = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="signalpost-writer", daemon=True)
        self._thread.start()

    def submit(self, op: WriteOp) -> Future[Any]:
        """Queue an operation; the returned future resolves once its group is durable."""
        fut: Future[Any] = Future()
        with self._gate:
            if not self._closed:
                self._queue.put((op, fut))
                return fut
        fut.set_exception(EngineClosed("The engine is closed."))
        return fut

    def submit_async(self, op: WriteOp) -> asyncio.Future[Any]:
        """Like `submit`, for callers on an asyncio event loop (call it from the loop's thread).

        The writer resolves every asyncio future of a group with one wake-up of its loop, not
        one per request: under load that saves a syscall and a loop iteration per request.
        """
        fut = asyncio.get_running_loop().create_future()
        with self._gate:
            if not self._closed:
                self._queue.put((op, fut))
                return fut
        fut.set_exception(EngineClosed("The engine is closed."))
        return fut

    def run(self, op: WriteOp) -> Any:
        return self.submit(op).result()

    def close(self) -> None:
        with self._gate:
            if self._closed:
                return
            # Under the gate, no submit can slip in behind the stop marker and wait forever.
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        q = self._queue
        busy = False
        while True:
            item = q.get()
            if item is _STOP:
                return
            if busy and self._group_wait:
                # Under load (the last group had company) a short wait fills the group, so
                # one fsync serves more requests; an idle server never waits.
                time.sleep(self._group_wait)
            group = [item]
            stop = False
            while len(group) < self._max_group:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                group.append(nxt)
            busy = len(group) > 1
            outcomes: list[_Outcome] = []
            try:
                self._commit_group(group, outcomes)
            except BaseException as exc:
                # The writer thread must outlive any one group, or every later write waits
                # forever: what the group had not answered yet fails with this error.
                log.exception("the writer failed a group")
                answered = {id(fut) for fut, _, _ in outcomes}
                outcomes.extend((fut, None, exc) for _, fut in group if id(fut) not in answered)
            _deliver(outcomes)
            if stop:
                return

    def _commit_group(self, group: list[_Item], outcomes: list[_Outcome]) -> None:
        stopped = self._fault.current()
        if stopped is not None:
            outcomes.extend((fut, None, stopped) for _, fut in group)
            return
        try:
            results, written = self._apply(group)
        except _CommitFailed as exc:
            log.critical("a commit could not be made durable; writes stop", exc_info=exc)
            stopped = self._fault.set(exc.__cause__ or exc)
            outcomes.extend((fut, None, stopped) for _, fut in group)
            return
        except Exception as exc:
            if len(group) == 1:
                if not isinstance(exc, SignalpostError):
                    log.exception("write operation failed")
                outcomes.append((group[0][1], None, exc))
                return
            # One bad operation, or one too large for the space left, must not fail its
            # neighbours: commit each on its own.
            for item in group:
                self._commit_group([item], outcomes)
            return
        outcomes.extend(
            (fut, result, None) for (_, fut), result in zip(group, results, strict=True)
        )
        if written and self._on_commit is not None:
            try:
                self._on_commit(written)
            except Exception:
                log.exception("commit hook failed")

    def _apply(self, group: list[_Item]) -> tuple[list[Any], set]:
        txn = self._store.begin_write()
        ctx = WriteContext(txn, self._store, self._interner, self._caches)
        try:
            with translate_errors():
                results = [op.apply(ctx) for op, _ in group]
                ctx.flush()
                _commit(txn, self._store.path)
        except BaseException:
            with contextlib.suppress(lmdb.Error):
                txn.abort()
            self._interner.aborted()
            raise
        self._interner.committed()
        return results, ctx.written


def _commit(txn: lmdb.Transaction, directory: Path) -> None:
    """Commit. A failure other than a full map or disk means the pages may not be on disk.

    LMDB reports a write cut short by a full disk as EIO, like a failed sync, so an I/O error
    on a disk left with (almost) no free space counts as a full disk: the commit's own pages
    took the space, nothing acknowledged before is in doubt. The two cannot be told apart: a
    failed sync that happens on a disk with under 1 MiB free is taken for a full disk.
    """
    try:
        txn.commit()
    except lmdb.Error as exc:
        if is_full(exc):
            raise
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = _FULL_DISK_BYTES  # unknown: the worse reading, that the flush failed
        if free < _FULL_DISK_BYTES:
            raise StorageFull("The disk holding the store is full.") from exc
        raise _CommitFailed(str(exc)) from exc
