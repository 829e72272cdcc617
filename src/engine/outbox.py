"""The durable webhook outbox: deliveries written in the same transaction as their event.

It is the only part of webhook delivery in the event store. Keys in its `webhooks` database:

- `I` seq -> a new delivery: its endpoint key, message id and due time, then its initial
  record (msgpack), laid out so that the worker copies it without decoding it. `seq` (8 bytes,
  big-endian) is one more than the highest `I` key when the transaction writes it; writers take
  the store's write lock in turn, so sequence order is commit order and the delivery worker
  reads the outbox from where it stopped (its mark, kept in the delivery book) without missing
  a delivery committed late.

The delivery worker copies new entries into the delivery book (`delivery_book.py`, an LMDB
environment of its own) and, now and then, drops the entries below its mark in one commit. The
highest entry always stays, so that sequence numbers never go back.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, NamedTuple

import lmdb
import msgspec

from .delivery_book import Delivery, Kind
from .store import Store

if TYPE_CHECKING:
    from .writer import WriteContext

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Delivery)
_HEAD, _AFTER = b"I", b"J"


def endpoint_key(prefix: bytes, endpoint_id: str) -> bytes:
    return prefix + endpoint_id.encode()


def new_message_id(now_us: int) -> str:
    return f"msg_{now_us:014x}{secrets.token_hex(5)}"


def _key(seq: int) -> bytes:
    return _HEAD + seq.to_bytes(8, "big")


def last_seq(txn: lmdb.Transaction, store: Store) -> int:
    with txn.cursor(db=store.webhooks) as cur:
        positioned = cur.prev() if cur.set_range(_AFTER) else cur.last()
        if positioned and cur.key()[:1] == _HEAD:
            return int.from_bytes(cur.key()[1:9], "big")
    return 0


def enqueue(
    txn: lmdb.Transaction,
    store: Store,
    ek: bytes,
    kind: Kind,
    event: str,
    body: bytes,
    now_us: int,
    url: str | None = None,
    ref: str | None = None,
) -> str:
    """Store a pending delivery, due at once. Runs in the transaction that stores the event."""
    msg_id = new_message_id(now_us)
    delivery = Delivery(
        msg_id, ek[-16:].decode(), kind, event, body, now_us, url, "pending", 0, now_us, 0,
        now_us, ref=ref,
    )  # fmt: skip
    mid = msg_id.encode()
    value = b"%c%s%c%s%s%s" % (
        len(ek), ek, len(mid), mid, now_us.to_bytes(8, "big"), _enc.encode(delivery)
    )  # fmt: skip
    txn.put(_key(last_seq(txn, store) + 1), value, db=store.webhooks)
    return msg_id


class Entry(NamedTuple):
    """An outbox entry as stored: its parts are the delivery book's keys and value."""

    ek: bytes
    msg_id: bytes
    due: bytes  # 8 bytes, big-endian microseconds
    record: bytes  # the msgpack of the delivery's initial `Delivery`


def _split(value: bytes) -> Entry:
    n = value[0]
    ek, at = value[1 : 1 + n], 2 + n
    m = value[1 + n]
    return Entry(ek, value[at : at + m], value[at + m : at + m + 8], value[at + m + 8 :])


def read_new(
    txn: lmdb.Transaction, store: Store, after: int, limit: int
) -> tuple[list[Entry], int]:
    """Up to `limit` entries after sequence number `after`, and the last number read."""
    entries, seq = [], after
    with txn.cursor(db=store.webhooks) as cur:
        if cur.set_range(_key(after + 1)):
            for key, value in cur:
                if key[:1] != _HEAD or len(entries) == limit:
                    break
                entries.append(_split(value))
                seq = int.from_bytes(key[1:9], "big")
    return entries, seq


def decode(entry: Entry) -> Delivery:
    return _dec.decode(entry.record)


def pending_of(txn: lmdb.Transaction, store: Store, ek: bytes, after: int) -> list[Delivery]:
    """An endpoint's entries after `after` (not yet in the delivery book), oldest first."""
    out = []
    with txn.cursor(db=store.webhooks) as cur:
        if cur.set_range(_key(after + 1)):
            for key, value in cur:
                if key[:1] != _HEAD:
                    break
                entry = _split(value)
                if entry.ek == ek:
                    out.append(_dec.decode(entry.record))
    return out


class DropTaken:
    """Delete the entries the delivery book holds, below `mark` (the highest stays), at most
    `limit` of them per commit."""

    def __init__(self, mark: int, limit: int = 20_000) -> None:
        self.mark, self.limit = mark, limit

    def apply(self, ctx: WriteContext) -> int:
        txn, db = ctx.txn, ctx.store.webhooks
        doomed = []
        with txn.cursor(db=db) as cur:
            if cur.set_range(_HEAD):
                for key in cur.iternext(values=False):
                    if key[:1] != _HEAD or len(doomed) == self.limit:
                        break
                    if int.from_bytes(key[1:9], "big") >= self.mark:
                        break
                    doomed.append(bytes(key))
        for key in doomed:
            txn.delete(key, db=db)
        return len(doomed)
