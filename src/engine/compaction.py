"""Compaction: merges small segments into larger ones, one bounded step at a time.

Segments carry a level: group commits write level 0; merging `fanout` segments of one level writes
one segment a level up. A step reads its sources in a read transaction (no lock held), builds the
merged columns, then hands a small operation to the writer that swaps sources for the result in
one transaction. If another process merged the same sources first, the step is dropped. Ingestion
waits at most for that swap, never for the copy.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterable

import numpy as np
from pyroaring import BitMap

from . import cohort_store, pending_rows
from .columns import VAR, VarColumn, concat_var, decode_var, encode_fixed, encode_var
from .config import CompactionConfig
from .dedup import prune_step
from .segments import (
    SCHEMAS,
    SegmentMeta,
    delete_segment,
    list_segments,
    read_columns,
    read_tombstones,
    segment_exists,
    write_segment,
)
from .store import Store
from .timeutil import now_us
from .writer import WriteContext, Writer

log = logging.getLogger("signalpost.compaction")
_COHORT_TICK_S = 30.0


def plan(
    segments: list[tuple[int, SegmentMeta]],
    config: CompactionConfig,
    tombstoned: frozenset[int] | set[int] = frozenset(),
) -> tuple[list[int], int] | None:
    """Pick the sources of the next merge step and the level of its result, or None.

    A segment with deleted rows is rewritten on its own first, whatever its size: deletion
    must become physical, not wait for the segment's turn in a merge.
    """
    for number, meta in segments:
        if number in tombstoned:
            return [number], meta.level
    by_level: dict[int, list[tuple[int, SegmentMeta]]] = {}
    for number, meta in segments:
        if meta.rows < config.target_rows:
            by_level.setdefault(meta.level, []).append((number, meta))
    for level in sorted(by_level):
        group = by_level[level]
        if len(group) < config.fanout:
            continue
        # The oldest run of at least two segments that fits in one step; a run that starts with
        # a segment too large to pair must not starve the rest of the level.
        for start in range(len(group) - 1):
            chosen, rows = [], 0
            for number, meta in group[start : start + config.fanout]:
                if chosen and rows + meta.rows > config.max_step_rows:
                    break
                chosen.append(number)
                rows += meta.rows
            if len(chosen) >= 2:
                return chosen, level + 1
    return None


class ReplaceSegments:
    """The writer's half of a merge: delete the sources, store the merged segment."""

    def __init__(
        self,
        prefix: bytes,
        table: str,
        sources: list[int],
        columns: dict,
        meta: SegmentMeta,
        hidden: dict[int, int] | None = None,
    ):
        self.prefix, self.table, self.sources = prefix, table, sources
        self.columns, self.meta = columns, meta
        self.hidden = hidden or {}

    def apply(self, ctx: WriteContext) -> int | None:
        txn, store = ctx.txn, ctx.store
        if not all(segment_exists(txn, store, self.prefix, self.table, n) for n in self.sources):
            return None
        # Rows deleted since the step read its sources would come back: drop the step.
        tombs = read_tombstones(txn, store, self.prefix, self.table)
        if any(len(tombs.get(n, ())) != self.hidden.get(n, 0) for n in self.sources):
            return None
        for number in self.sources:
            delete_segment(txn, store, self.prefix, self.table, number)
        if self.meta.rows == 0:
            return 0
        return write_segment(txn, store, self.prefix, self.table, self.columns, self.meta)


def merge_step(
    store: Store, writer: Writer, prefix: bytes, table: str, config: CompactionConfig
) -> bool:
    """Run one merge step if one is due. Returns whether anything was merged."""
    schema = SCHEMAS[table]
    with store.read() as txn:
        segments = list_segments(txn, store, prefix, table)
        tombs = read_tombstones(txn, store, prefix, table)
        chosen = plan(segments, config, set(tombs))
        if chosen is None:
            return False
        sources, level = chosen
        parts = [read_columns(txn, store, prefix, table, n, schema) for n in sources]
    keeps = [_live_rows(parts[i]["ts"], tombs.get(n)) for i, n in enumerate(sources)]
    columns: dict[str, bytes] = {}
    for name, kind in schema.items():
        if kind == VAR:
            columns[name] = concat_var(
                [_take_var(p[name], keep) for p, keep in zip(parts, keeps, strict=True)]
            )
        else:
            columns[name] = encode_fixed(
                np.concatenate(
                    [
                        p[name] if k is None else p[name][k]
                        for p, k in zip(parts, keeps, strict=True)
                    ]
                ),
                kind,
            )
    ts = np.concatenate(
        [p["ts"] if k is None else p["ts"][k] for p, k in zip(parts, keeps, strict=True)]
    )
    meta = SegmentMeta(
        rows=len(ts),
        min_ts=int(ts.min()) if len(ts) else 0,
        max_ts=int(ts.max()) if len(ts) else 0,
        level=level,
        created_us=now_us(),
    )
    hidden = {n: len(tombs[n]) for n in sources if n in tombs}
    op = ReplaceSegments(prefix, table, sources, columns, meta, hidden)
    return writer.run(op) is not None


def _live_rows(ts: np.ndarray, hidden: BitMap | None) -> np.ndarray | None:
    """Indexes of rows that survive deletion, or None when all do."""
    if not hidden:
        return None
    keep = np.ones(len(ts), dtype=bool)
    keep[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = False
    return np.flatnonzero(keep)


def _take_var(column: VarColumn, keep: np.ndarray | None) -> VarColumn:
    if keep is None:
        return column
    return decode_var(encode_var(column.take(keep)))


class Compactor:
    """Background thread that merges the segments of tables the writer just wrote to.

    Notifications are gathered for `interval` seconds so that a burst of commits costs one
    planning pass. With several processes on one store, an advisory file lock lets one of them
    compact at a time, so no two processes copy the same segments for nothing.
    """

    def __init__(
        self,
        store: Store,
        writer: Writer,
        config: CompactionConfig,
        interval: float = 0.2,
        dedup_window_us: int = 7 * 24 * 3600 * 1_000_000,
        cohort_refresh_us: int = 300 * 1_000_000,
    ) -> None:
        self._store, self._writer, self._config = store, writer, config
        self._interval = interval
        self._cohort_refresh_us = cohort_refresh_us
        self._dedup_window_us = dedup_window_us
        self._dedup_cursor = b""
        self._next_prune = 0.0
        self._drained_at: dict[tuple[bytes, str], float] = {}
        self._pending: set[tuple[bytes, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._lock_path = store.path / "compaction.lock"
        self._thread = threading.Thread(target=self._run, name="signalpost-compactor", daemon=True)
        self._thread.start()

    def notify(self, written: Iterable[tuple[bytes, str]]) -> None:
        with self._lock:
            self._pending.update(written)
        self._wake.set()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _refresh_all_cohorts(self) -> None:
        self.notify((p, "cohorts") for p in cohort_store.tenants_with_cohorts(self._store))

    def _run(self) -> None:
        # Users touched just before a crash are still listed as touched in the store: a first
        # refresh brings their cohorts up to date without waiting for a write or a tick.
        self._refresh_all_cohorts()
        while not self._stopping:
            # Woken by commits; otherwise every tick, for cohorts whose windows slide with time.
            if not self._wake.wait(timeout=_COHORT_TICK_S):
                self._refresh_all_cohorts()
            self._wake.clear()
            if self._stopping:
                return
            time.sleep(self._interval)
            with self._lock:
                pending, self._pending = self._pending, set()
            with open(self._lock_path, "a+b") as lock_file:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # Another process is compacting; try these tables again later.
                    self.notify(pending)
                    continue
                self._compact(pending)

    def _drain_due(self, prefix: bytes, table: str) -> bool:
        now = time.monotonic()
        if now - self._drained_at.get((prefix, table), -1e9) < self._config.drain_interval_seconds:
            return False
        self._drained_at[(prefix, table)] = now
        return True

    def _prune_dedup(self) -> None:
        """One bounded pruning step of expired insert_ids, at most every few seconds."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 5.0
        try:
            _, self._dedup_cursor = prune_step(
                self._store, self._writer, self._dedup_cursor, now_us() - self._dedup_window_us
            )
        except Exception:
            log.exception("dedup pruning failed; it will be retried")

    def _compact(self, pending: set[tuple[bytes, str]]) -> None:
        self._prune_dedup()
        for prefix, table in pending:
            try:
                if table == "cohorts":
                    cohort_store.refresh(self._store, self._writer, prefix, self._cohort_refresh_us)
                    continue
                if table in pending_rows.DATABASES and not self._drain_due(prefix, table):
                    self.notify([(prefix, table)])  # its rows move on a later cycle
                    continue
                pending_rows.drain_all(
                    self._store, self._writer, prefix, table, self._config.max_step_rows
                )
                while not self._stopping and merge_step(
                    self._store, self._writer, prefix, table, self._config
                ):
                    pass
            except Exception:
                log.exception("compaction step failed; it will be retried on the next write")
