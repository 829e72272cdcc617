"""Reading segments back: columns copied out of a read transaction, filtered by time.

A scan takes its own read transaction (an MVCC snapshot), so it never blocks the writer.
"""

from __future__ import annotations

from collections.abc import Sequence

import lmdb
import numpy as np

from .columns import VAR, VarColumn
from .segments import SCHEMAS, SegmentMeta, list_segments, read_columns, read_tombstones
from .store import Store


def overlapping(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str, from_us: int, to_us: int
) -> list[tuple[int, SegmentMeta]]:
    """Segments that may hold rows with from_us <= ts < to_us."""
    return [
        (n, m)
        for n, m in list_segments(txn, store, prefix, table)
        if m.max_ts >= from_us and m.min_ts < to_us
    ]


def load(
    txn: lmdb.Transaction,
    store: Store,
    prefix: bytes,
    table: str,
    columns: Sequence[str],
    from_us: int,
    to_us: int,
    segments: list[tuple[int, SegmentMeta]] | None = None,
) -> dict[str, np.ndarray | list[bytes]]:
    """Rows with from_us <= ts < to_us, in segment order. Variable columns come as bytes lists."""
    if segments is None:
        segments = overlapping(txn, store, prefix, table, from_us, to_us)
    names = list(dict.fromkeys(["ts", *columns]))
    parts: dict[str, list] = {name: [] for name in names}
    tombs = read_tombstones(txn, store, prefix, table)
    for number, meta in segments:
        cols = read_columns(txn, store, prefix, table, number, names)
        ts = cols["ts"]
        hidden = tombs.get(number)
        if meta.min_ts >= from_us and meta.max_ts < to_us and not hidden:
            index = None
        else:
            keep = (ts >= from_us) & (ts < to_us)
            if hidden:
                keep[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = False
            index = np.flatnonzero(keep)
            if not len(index):
                continue
        for name in names:
            col = cols[name]
            if isinstance(col, VarColumn):
                parts[name].append(col.to_list() if index is None else col.take(index))
            else:
                parts[name].append(col if index is None else col[index])
    out: dict[str, np.ndarray | list[bytes]] = {}
    for name in names:
        chunks = parts[name]
        if chunks and isinstance(chunks[0], list):
            out[name] = [v for chunk in chunks for v in chunk]
        elif chunks:
            out[name] = np.concatenate(chunks)
        else:
            out[name] = [] if SCHEMAS[table][name] == VAR else np.array([], "i8")
    return out
