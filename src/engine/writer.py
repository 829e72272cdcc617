"""Group commit: one writer thread per process commits every waiting operation in one transaction.

Requests hand operations to `Writer.submit`; the writer drains the queue, applies them all in one
LMDB write transaction, commits (one fsync in durable mode) and only then resolves their futures.
LMDB serialises the writers of several processes, so `--workers N` shares one store safely.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

import lmdb

from .columns import VAR, encode_fixed, encode_var
from .dictionary import Interner
from .errors import EngineClosed, SignalpostError, StorageError
from .segments import SCHEMAS, SegmentMeta, write_segment
from .store import Store, translate_errors

log = logging.getLogger("signalpost.writer")


class WriteOp(Protocol):
    def apply(self, ctx: WriteContext) -> Any: ...


class _TableBuilder:
    __slots__ = ("columns", "rows")

    def __init__(self, table: str) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in SCHEMAS[table]}
        self.rows = 0


class WriteContext:
    """What an operation sees while the writer applies it: the transaction and the builders."""

    def __init__(self, txn: lmdb.Transaction, store: Store, interner: Interner) -> None:
        self.txn = txn
        self.store = store
        self.interner = interner
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

    def flush(self) -> None:
        for (prefix, table), builder in self._builders.items():
            cols = builder.columns
            ts = cols["ts"]
            if not ts:
                continue
            schema = SCHEMAS[table]
            encoded = {
                name: encode_var(values)
                if schema[name] == VAR
                else encode_fixed(values, schema[name])
                for name, values in cols.items()
            }
            meta = SegmentMeta(len(ts), min(ts), max(ts), 0, self.now_us)
            write_segment(self.txn, self.store, prefix, table, encoded, meta)
            self.written.add((prefix, table))
        self.interner.commit(self.txn)
        usage = self.store.usage
        for key, n in self._counters.items():
            raw = self.txn.get(key, db=usage)
            total = (int.from_bytes(raw, "little") if raw else 0) + n
            self.txn.put(key, total.to_bytes(8, "little"), db=usage)


_STOP = object()


class Writer:
    def __init__(
        self,
        store: Store,
        *,
        max_group_ops: int = 4096,
        on_commit: Callable[[set[tuple[bytes, str]]], None] | None = None,
    ) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_group = max_group_ops
        self._interner = Interner(store)
        self._on_commit = on_commit
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="signalpost-writer", daemon=True)
        self._thread.start()

    def submit(self, op: WriteOp) -> Future[Any]:
        fut: Future[Any] = Future()
        if self._closed:
            fut.set_exception(EngineClosed("The engine is closed."))
            return fut
        self._queue.put((op, fut))
        return fut

    def run(self, op: WriteOp) -> Any:
        return self.submit(op).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is _STOP:
                return
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
            self._commit_group(group)
            if stop:
                return

    def _commit_group(self, group: list[tuple[WriteOp, Future[Any]]]) -> None:
        try:
            results, written = self._apply(group)
        except StorageError as exc:
            for _, fut in group:
                fut.set_exception(exc)
            return
        except Exception as exc:
            if len(group) == 1:
                if not isinstance(exc, SignalpostError):
                    log.exception("write operation failed")
                group[0][1].set_exception(exc)
                return
            # One bad operation must not fail its neighbours: commit each on its own.
            for item in group:
                self._commit_group([item])
            return
        for (_, fut), result in zip(group, results, strict=True):
            fut.set_result(result)
        if written and self._on_commit is not None:
            try:
                self._on_commit(written)
            except Exception:
                log.exception("commit hook failed")

    def _apply(self, group: list[tuple[WriteOp, Future[Any]]]) -> tuple[list[Any], set]:
        txn = self._store.begin_write()
        ctx = WriteContext(txn, self._store, self._interner)
        try:
            with translate_errors():
                results = [op.apply(ctx) for op, _ in group]
                ctx.flush()
                txn.commit()
        except BaseException:
            with contextlib.suppress(lmdb.Error):
                txn.abort()
            self._interner.aborted()
            raise
        self._interner.committed()
        return results, ctx.written
