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
from .segments import ADDED, SCHEMAS
from .store import Store
from .writer import WriteContext, Writer

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


def waiting(store: Store, prefix: bytes, table: str) -> bool:
    """Whether the table has pending rows (a read, so an idle compactor commits nothing)."""
    head = _head(prefix, table)
    with store.read() as txn, txn.cursor(db=database(store, table)) as cur:
        return cur.set_range(head) and cur.key().startswith(head)


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


class DrainPending:
    """The write operation that moves pending rows into a new level-0 segment."""

    def __init__(self, prefix: bytes, table: str, limit: int) -> None:
        self.prefix, self.table, self.limit = prefix, table, limit

    def apply(self, ctx: WriteContext) -> int:
        columns = ctx.columns(self.prefix, self.table)
        db = database(ctx.store, self.table)
        return drain(ctx.txn, db, self.prefix, self.table, columns, self.limit)


def drain_all(store: Store, writer: Writer, prefix: bytes, table: str, limit: int) -> int:
    """Move every pending row of the table into segments of at most `limit` rows."""
    moved = 0
    if table not in DATABASES or not waiting(store, prefix, table):
        return moved
    while True:
        n = writer.run(DrainPending(prefix, table, limit))
        moved += n
        if n < limit:
            return moved
