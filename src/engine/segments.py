"""Columnar, append-only segments: one LMDB value per column per segment, immutable once written.

A segment belongs to one (tenant, table). Its number comes from a per-table counter that only
the write transaction advances, so numbers are unique across processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from .columns import FIXED_DTYPES, VAR, VarColumn, decode_fixed, decode_var
from .store import Store

# Column name -> encoding, per table. "ts" (int64 microseconds UTC) is required in every table.
SCHEMAS: dict[str, dict[str, str]] = {
    "events": {
        "ts": "i8",
        "received": "i8",
        "user": "u4",
        "event": "u4",
        "props": VAR,
        "insert_id": VAR,
        "request_id": VAR,
    },
    # One row per device identification; what rules, backtests and device analytics scan.
    "identifications": {
        "ts": "i8",
        "visitor": "u4",
        "request": VAR,
        "confidence": "f4",
        "signals": "u4",
        "abuse": "f4",
        "ato": "f4",
        "bot": "f4",
        "suspect": "u4",
        "country": "u4",
        "asn": "u4",
        "platform": "u4",
        "browser": "u4",
        "event_type": "u4",
        "ip": VAR,
        "linked": VAR,
        "verdict": "u4",
        "ips_1h": "u4",
        "ips_24h": "u4",
        "visitors_ip_1h": "u4",
        "visitors_ip_24h": "u4",
        "accounts": "u4",
        # 0/1, and interned codes (NO_VALUE when the event has none).
        "found": "u4",
        "city": "u4",
        "device_type": "u4",
        "os": "u4",
    },
}

# A u4 that no interned code or flag takes: the row has no value there.
NO_VALUE = 0xFFFFFFFF
# Columns added after their table was first written, with the value that stands for "no value".
# Segments written before lack them; reading such a segment yields that value for every row
# (and compaction writes it into the merged segment), never a KeyError.
ADDED: dict[str, dict[str, int]] = {
    "identifications": {
        "found": NO_VALUE,
        "city": NO_VALUE,
        "device_type": NO_VALUE,
        "os": NO_VALUE,
    },
}


class SegmentMeta(msgspec.Struct, frozen=True, array_like=True):
    rows: int
    min_ts: int
    max_ts: int
    level: int
    created_us: int


_meta_encoder = msgspec.msgpack.Encoder()
_meta_decoder = msgspec.msgpack.Decoder(SegmentMeta)


def _segment_key(prefix: bytes, table: str, number: int) -> bytes:
    return prefix + table.encode() + b"\x00" + number.to_bytes(8, "big")


def _meta_key(prefix: bytes, table: str, number: int) -> bytes:
    return b"seg\x00" + _segment_key(prefix, table, number)


def _counter_key(prefix: bytes, table: str) -> bytes:
    return b"segseq\x00" + prefix + table.encode()


def write_segment(
    txn: lmdb.Transaction,
    store: Store,
    prefix: bytes,
    table: str,
    columns: Mapping[str, bytes],
    meta: SegmentMeta,
) -> int:
    """Store a new segment and return its number. `columns` holds encoded values."""
    ckey = _counter_key(prefix, table)
    raw = txn.get(ckey, db=store.meta)
    number = int.from_bytes(raw, "big") if raw else 1
    txn.put(ckey, (number + 1).to_bytes(8, "big"), db=store.meta)
    base = _segment_key(prefix, table, number)
    for name, value in columns.items():
        txn.put(base + name.encode(), value, db=store.columns)
    txn.put(_meta_key(prefix, table, number), _meta_encoder.encode(meta), db=store.meta)
    return number


def list_segments(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str
) -> list[tuple[int, SegmentMeta]]:
    start = _meta_key(prefix, table, 0)
    head = start[:-8]
    out = []
    with txn.cursor(db=store.meta) as cur:
        if not cur.set_range(start):
            return out
        for key, value in cur:
            if not key.startswith(head):
                break
            out.append((int.from_bytes(key[-8:], "big"), _meta_decoder.decode(value)))
    return out


def segment_exists(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str, number: int
) -> bool:
    return txn.get(_meta_key(prefix, table, number), db=store.meta) is not None


def read_columns(
    txn: lmdb.Transaction,
    store: Store,
    prefix: bytes,
    table: str,
    number: int,
    names: Iterable[str],
) -> dict[str, np.ndarray | VarColumn]:
    schema = SCHEMAS[table]
    base = _segment_key(prefix, table, number)
    out: dict[str, np.ndarray | VarColumn] = {}
    for name in names:
        raw = txn.get(base + name.encode(), db=store.columns)
        kind = schema[name]
        if raw is None:
            fill = ADDED.get(table, {}).get(name)
            ts = txn.get(base + b"ts", db=store.columns)
            if fill is None or ts is None:
                raise KeyError(f"segment {number} of {table} lacks column {name}")
            rows = len(ts) // 8
            out[name] = np.full(rows, fill, dtype=FIXED_DTYPES[kind])
            continue
        out[name] = decode_var(raw) if kind == VAR else decode_fixed(raw, kind)
    return out


def _tomb_key(prefix: bytes, table: str, number: int) -> bytes:
    return b"tomb\x00" + _segment_key(prefix, table, number)


def read_tombstones(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str
) -> dict[int, BitMap]:
    """Rows hidden by deletion, per segment number, until compaction removes them."""
    head = b"tomb\x00" + prefix + table.encode() + b"\x00"
    out: dict[int, BitMap] = {}
    with txn.cursor(db=store.meta) as cur:
        if not cur.set_range(head):
            return out
        for key, value in cur:
            if not key.startswith(head):
                break
            out[int.from_bytes(key[-8:], "big")] = BitMap.deserialize(value)
    return out


def add_tombstones(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str, number: int, rows: Iterable[int]
) -> None:
    key = _tomb_key(prefix, table, number)
    raw = txn.get(key, db=store.meta)
    bitmap = BitMap.deserialize(raw) if raw is not None else BitMap()
    bitmap.update(rows)
    txn.put(key, bitmap.serialize(), db=store.meta)


def delete_segment(
    txn: lmdb.Transaction, store: Store, prefix: bytes, table: str, number: int
) -> None:
    base = _segment_key(prefix, table, number)
    for name in SCHEMAS[table]:
        txn.delete(base + name.encode(), db=store.columns)
    txn.delete(_meta_key(prefix, table, number), db=store.meta)
    txn.delete(_tomb_key(prefix, table, number), db=store.meta)
