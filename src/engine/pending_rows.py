"""Rows acknowledged but not yet in a segment.

A write that stores one row per request (an identification) would otherwise write a whole segment
per group commit: two dozen column values and the segment's metadata, about six dirty pages, and
a durable commit costs roughly one disk write per dirty page. Instead each row is one small value
appended in time order beside the data the request writes anyway, and the compactor moves all
pending rows of a table into one segment a fraction of a second later (`drain`).

Readers see a table as its segments plus its pending rows (`read`), in one snapshot: `drain`
deletes the rows it moves in the transaction that writes their segment, so no row is seen twice
or lost. Pending rows survive a crash like any other acknowledged write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import lmdb
import msgspec
import numpy as np

from .columns import FIXED_DTYPES, VAR, VarColumn, decode_var, encode_var
from .segments import ADDED, SCHEMAS, SegmentMeta, write_segment
from .store import Store
from .writer import WriteContext, Writer, encode_columns

# The tables whose rows wait here, and the database that holds them: the one the same write
# already touches, so a pending row adds no pages on other trees.
DATABASES = {"identifications": "idents"}


def database(store: Store, table: str) -> lmdb._Database:
    return store.dbs[DATABASES[table]]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list)


def _head(prefix: bytes, table: str) -> bytes:
    return b"p" + prefix + table.encode() + b"\x00"


def append(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    prefix: bytes,
    table: str,
    ts: int,
    unique: bytes,
    row: Sequence[Any],
) -> None:
    """Store one row, its values in the order of the table's schema."""
    key = _head(prefix, table) + ts.to_bytes(8, "big") + unique
    txn.put(key, _encoder.encode(row), db=db)


def _rows(
    txn: lmdb.Transaction, db: lmdb._Database, prefix: bytes, table: str, limit: int | None
) -> tuple[list[bytes], list[list[Any]]]:
    head = _head(prefix, table)
    keys: list[bytes] = []
    rows: list[list[Any]] = []
    with txn.cursor(db=db) as cur:
        if not cur.set_range(head):
            return keys, rows
        for key, value in cur:
            if not key.startswith(head) or (limit is not None and len(rows) >= limit):
                break
            keys.append(bytes(key))
            rows.append(_decoder.decode(value))
    width = len(SCHEMAS[table])
    for row in rows:
        if len(row) < width:
            # Written before columns were added to the table (segments.ADDED).
            added = ADDED[table]
            row.extend(added[name] for name in list(SCHEMAS[table])[len(row) :])
    return keys, rows


def _as_columns(table: str, rows: list[list[Any]], names: Iterable[str]) -> dict[str, Any]:
    schema = SCHEMAS[table]
    position = {name: i for i, name in enumerate(schema)}
    out: dict[str, np.ndarray | VarColumn] = {}
    for name in names:
        i, kind = position[name], schema[name]
        values = [row[i] for row in rows]
        if kind == VAR:
            out[name] = decode_var(encode_var(values))
        else:
            out[name] = np.asarray(values, dtype=FIXED_DTYPES[kind]).reshape(len(values))
    return out


def read(
    txn: lmdb.Transaction, db: lmdb._Database, prefix: bytes, table: str, names: Iterable[str]
) -> dict[str, np.ndarray | VarColumn]:
    """The pending rows of a table as columns, in the shapes `segments.read_columns` returns."""
    _, rows = _rows(txn, db, prefix, table, None)
    return _as_columns(table, rows, names)


def drain(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    prefix: bytes,
    table: str,
    columns: dict[str, list[Any]],
    limit: int,
) -> int:
    """Move up to `limit` pending rows into `columns` (a write context's builder, which becomes
    a segment at commit) and delete them; return how many moved."""
    keys, rows = _rows(txn, db, prefix, table, limit)
    for i, name in enumerate(SCHEMAS[table]):
        columns[name].extend(row[i] for row in rows)
    for key in keys:
        txn.delete(key, db=db)
    return len(rows)


def delete_where(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    prefix: bytes,
    table: str,
    column: str,
    value: Any,
) -> int:
    """Delete the pending rows whose `column` equals `value` (a deletion of their subject)."""
    i = list(SCHEMAS[table]).index(column)
    keys, rows = _rows(txn, db, prefix, table, None)
    gone = [key for key, row in zip(keys, rows, strict=True) if row[i] == value]
    for key in gone:
        txn.delete(key, db=db)
    return len(gone)


class Drained(msgspec.Struct, frozen=True):
    """Pending rows read in a snapshot and encoded as a segment, ready for the writer."""

    keys: list[bytes]
    columns: dict[str, bytes]
    min_ts: int
    max_ts: int


def prepare(store: Store, prefix: bytes, table: str, limit: int) -> Drained | None:
    """Read and encode up to `limit` pending rows outside the writer (None when none wait).

    Decoding the rows and encoding their columns is most of a drain's work; done here, the
    writer's transaction (which every request of both workers queues behind) only checks that the
    rows are still there, deletes them and writes the finished segment.
    """
    with store.read() as txn:
        keys, rows = _rows(txn, database(store, table), prefix, table, limit)
    if not rows:
        return None
    names = list(SCHEMAS[table])
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    ts = columns["ts"]
    return Drained(keys, encode_columns(table, columns), min(ts), max(ts))


def _take(txn: lmdb.Transaction, db: lmdb._Database, keys: list[bytes]) -> bool:
    """Delete exactly these pending rows, or nothing if any of them is gone (deleted with its
    visitor since the snapshot). Rows added meanwhile are not among the keys and stay."""
    if any(txn.get(key, db=db) is None for key in keys):
        return False
    for key in keys:
        txn.delete(key, db=db)
    return True


class DrainPending:
    """The write operation that moves pending rows into a new level-0 segment: the rows a
    `prepare` read when they are all still there, else up to `limit` rows read here."""

    def __init__(
        self, prefix: bytes, table: str, limit: int, prepared: Drained | None = None
    ) -> None:
        self.prefix, self.table, self.limit, self.prepared = prefix, table, limit, prepared

    def apply(self, ctx: WriteContext) -> int:
        db = database(ctx.store, self.table)
        ready = self.prepared
        if ready is not None and _take(ctx.txn, db, ready.keys):
            meta = SegmentMeta(len(ready.keys), ready.min_ts, ready.max_ts, 0, ctx.now_us)
            write_segment(ctx.txn, ctx.store, self.prefix, self.table, ready.columns, meta)
            ctx.written.add((self.prefix, self.table))
            return len(ready.keys)
        columns = ctx.columns(self.prefix, self.table)
        return drain(ctx.txn, db, self.prefix, self.table, columns, self.limit)


def drain_all(store: Store, writer: Writer, prefix: bytes, table: str, limit: int) -> int:
    """Move every pending row of the table into segments of at most `limit` rows."""
    moved = 0
    if table not in DATABASES:
        return moved
    while True:
        ready = prepare(store, prefix, table, limit)
        if ready is None:
            return moved
        n = writer.run(DrainPending(prefix, table, limit, ready))
        moved += n
        if n < limit and len(ready.keys) < limit:
            return moved
