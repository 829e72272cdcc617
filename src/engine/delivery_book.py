"""The delivery book: every delivery's state, attempts and history, in an LMDB environment of
its own (`deliveries/` in the data directory), so that the delivery worker's frequent commits
never hold the event store's write lock that requests need.

Deliveries enter it from the outbox (`outbox.py`), which the request path writes in the same
transaction as the event. Keys of its one database, per endpoint key `ek` (tenant prefix +
endpoint id):

- `M` -> the outbox sequence number up to which entries were copied here (8 bytes).
- `D` ek msg_id -> the delivery: body, state, attempts; kept after it finishes, for listing
  and replay, up to a bounded history per endpoint. Message ids start with their creation time
  in hex, so key order is time order.
- `Q` ek due msg_id -> empty: a pending delivery and when it is due (8 bytes, big-endian).
  It stays while the delivery is in flight (the worker holds its claims in memory), so a
  delivery whose answer was never recorded is due, and sent again with the same `webhook-id`,
  when the next worker starts after a crash.
- `S` ek -> attempt statistics of the endpoint.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Literal

import lmdb
import msgspec

from .errors import InvalidInput, NotFound
from .store import Store
from .timeutil import iso
from .visitor_records import doc_key

State = Literal["pending", "delivered", "failed", "cancelled"]
Kind = Literal["webhook", "slack"]
MAX_LOG = 20  # attempts remembered per delivery
_TRIM_STEP = 64  # finished deliveries removed at most per endpoint and call


class Attempt(msgspec.Struct, array_like=True):
    at_us: int
    status: int  # the HTTP status, 0 when there was no answer
    error: str | None
    duration_ms: float


class Delivery(msgspec.Struct):
    id: str
    endpoint: str
    kind: Kind
    event: str
    # The payload, or empty when `ref` names the stored identification document that is the
    # payload's `data`: the request path then writes no second copy of it.
    body: bytes
    created_us: int
    # Slack targets carry their URL (None: the configured default); webhook deliveries go to
    # the endpoint's current URL.
    url: str | None = None
    state: State = "pending"
    attempts: int = 0
    # The retry schedule counts from the start of a round: creation, or a replay.
    round_start_us: int = 0
    round_tries: int = 0
    next_us: int = 0
    log: list[Attempt] = []
    ref: str | None = None


class Stats(msgspec.Struct, array_like=True):
    attempts: int = 0
    successes: int = 0
    last_attempt_us: int = 0
    finished: int = 0


class AttemptOut(msgspec.Struct):
    at: str
    status: int | None
    error: str | None
    durationMs: float


class DeliveryOut(msgspec.Struct):
    id: str
    event: str
    status: State
    attempts: int
    createdAt: str
    nextAttemptAt: str | None
    lastAttemptAt: str | None
    lastStatus: int | None
    attemptLog: list[AttemptOut]
    payload: msgspec.Raw


class DeliveryPage(msgspec.Struct):
    data: list[DeliveryOut]
    hasMore: bool


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Delivery)
_stats_dec = msgspec.msgpack.Decoder(Stats)


class _StateOnly(msgspec.Struct):
    state: State = "pending"


_state_dec = msgspec.msgpack.Decoder(_StateOnly)  # skips the body of a record
_MARK = b"M"


def split_endpoint(key: bytes) -> bytes:
    """The endpoint key inside a `D`/`Q`/`C` key: tenant prefix (`ws\\0E\\0`) + 16-byte id."""
    return key[1 : key.index(b"\x00") + 3 + 16]


def delivery_key(ek: bytes, msg_id: str | bytes) -> bytes:
    return b"D" + ek + (msg_id if isinstance(msg_id, bytes) else msg_id.encode())


def queue_key(ek: bytes, due: int | bytes, msg_id: str | bytes) -> bytes:
    """`due`: microseconds, or already as its 8 big-endian bytes."""
    due_bytes = due if isinstance(due, bytes) else due.to_bytes(8, "big")
    return b"Q" + ek + due_bytes + (msg_id if isinstance(msg_id, bytes) else msg_id.encode())


def queue_entry(key: bytes, ek: bytes) -> tuple[int, str]:
    """Due time and message id of a `Q` key."""
    at = 1 + len(ek)
    return int.from_bytes(key[at : at + 8], "big"), key[at + 8 :].decode()


def mark(txn: lmdb.Transaction, store: Store) -> int:
    """The outbox sequence number up to which entries are in the book."""
    raw = txn.get(_MARK, db=store.book)
    return int.from_bytes(raw, "big") if raw else 0


def take(
    txn: lmdb.Transaction,
    store: Store,
    entries: Iterable[tuple[bytes, bytes, bytes, bytes]],
    upto: int,
) -> None:
    """Copy new outbox entries (endpoint key, message id, due time, record) into the book as
    pending deliveries, and move the mark: in one commit, so each entry is taken exactly
    once. The record is copied as stored."""
    db = store.book
    for ek, mid, due, record in entries:
        txn.put(delivery_key(ek, mid), record, db=db)
        txn.put(queue_key(ek, due, mid), b"", db=db)
    txn.put(_MARK, upto.to_bytes(8, "big"), db=db)


def load(txn: lmdb.Transaction, store: Store, ek: bytes, msg_id: str) -> Delivery | None:
    raw = txn.get(delivery_key(ek, msg_id), db=store.book)
    return None if raw is None else _dec.decode(raw)


def save(txn: lmdb.Transaction, store: Store, ek: bytes, delivery: Delivery) -> None:
    txn.put(delivery_key(ek, delivery.id), _enc.encode(delivery), db=store.book)


def body_of(main: lmdb.Transaction, store: Store, ek: bytes, delivery: Delivery) -> bytes | None:
    """The payload as sent, the same bytes on every attempt; None when the identification it
    refers to was deleted since (a deleted visitor's data is not sent any more). `main` is a
    transaction of the event store, which holds that identification."""
    if delivery.ref is None:
        return delivery.body
    doc = main.get(doc_key(ek[:-16], delivery.ref), db=store.idents)
    if doc is None:
        return None
    return b'{"event":"%s","timestamp":"%s","data":%s}' % (
        delivery.event.encode(),
        iso(delivery.created_us).encode(),
        doc,
    )


def schedule(
    txn: lmdb.Transaction, store: Store, ek: bytes, delivery: Delivery, due_us: int
) -> None:
    delivery.next_us = due_us
    txn.put(queue_key(ek, due_us, delivery.id), b"", db=store.book)


def _keys(txn: lmdb.Transaction, store: Store, head: bytes) -> list[bytes]:
    out = []
    with txn.cursor(db=store.book) as cur:
        if cur.set_range(head):
            for key in cur.iternext(values=False):
                if not key.startswith(head):
                    break
                out.append(bytes(key))
    return out


def cancel_pending(txn: lmdb.Transaction, store: Store, ek: bytes) -> int:
    """Cancel every pending (and so in-flight) delivery of an endpoint; returns how many."""
    db, cancelled = store.book, 0
    queued = _keys(txn, store, b"Q" + ek)
    ids = [queue_entry(k, ek)[1] for k in queued]
    for key in queued:
        txn.delete(key, db=db)
    for msg_id in ids:
        delivery = load(txn, store, ek, msg_id)
        if delivery is not None and delivery.state == "pending":
            delivery.state = "cancelled"
            save(txn, store, ek, delivery)
            cancelled += 1
    add_finished(txn, store, ek, cancelled)
    return cancelled


def remove_endpoint(txn: lmdb.Transaction, store: Store, ek: bytes) -> None:
    """Forget an endpoint's outbox: pending deliveries are cancelled, history is dropped."""
    for head in (b"Q", b"D"):
        for key in _keys(txn, store, head + ek):
            txn.delete(key, db=store.book)
    txn.delete(b"S" + ek, db=store.book)


def stats(txn: lmdb.Transaction, store: Store, ek: bytes) -> Stats:
    raw = txn.get(b"S" + ek, db=store.book)
    return Stats() if raw is None else _stats_dec.decode(raw)


def add_stats(
    txn: lmdb.Transaction, store: Store, ek: bytes, added: Stats, keep: int | None = None
) -> None:
    """Add to an endpoint's statistics; with `keep`, also drop its oldest finished deliveries
    beyond `keep` (at most `_TRIM_STEP` per call)."""
    current = stats(txn, store, ek)
    current.attempts += added.attempts
    current.successes += added.successes
    current.last_attempt_us = max(current.last_attempt_us, added.last_attempt_us)
    current.finished = max(0, current.finished + added.finished)
    if keep is not None:
        current.finished -= _trim_history(txn, store, ek, current.finished - keep)
    txn.put(b"S" + ek, _enc.encode(current), db=store.book)


def add_finished(txn: lmdb.Transaction, store: Store, ek: bytes, n: int) -> None:
    if n:
        add_stats(txn, store, ek, Stats(finished=n))


def _trim_history(txn: lmdb.Transaction, store: Store, ek: bytes, excess: int) -> int:
    """Delete up to `excess` (at most `_TRIM_STEP`) of the oldest finished deliveries; returns
    how many went."""
    excess = min(excess, _TRIM_STEP)
    if excess <= 0:
        return 0
    head, doomed = b"D" + ek, []
    with txn.cursor(db=store.book) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head) or len(doomed) >= excess:
                    break
                if _state_dec.decode(value).state != "pending":
                    doomed.append(bytes(key))
    for key in doomed:
        txn.delete(key, db=store.book)
    return len(doomed)


def out(delivery: Delivery, body: bytes | None = None) -> DeliveryOut:
    last = delivery.log[-1] if delivery.log else None
    return DeliveryOut(
        delivery.id,
        delivery.event,
        delivery.state,
        delivery.attempts,
        iso(delivery.created_us),
        iso(delivery.next_us) if delivery.state == "pending" else None,
        iso(last.at_us) if last else None,
        (last.status or None) if last else None,
        [AttemptOut(iso(a.at_us), a.status or None, a.error, a.duration_ms) for a in delivery.log],
        msgspec.Raw(body or delivery.body or b"null"),
    )


def _booked(txn: lmdb.Transaction, store: Store, ek: bytes) -> Iterator[Delivery]:
    head = b"D" + ek
    with txn.cursor(db=store.book) as cur:
        positioned = cur.set_range(head + b"\xff")
        positioned = cur.prev() if positioned else cur.last()
        while positioned:
            key = cur.key()
            if not key.startswith(head):
                return
            yield _dec.decode(cur.value())
            positioned = cur.prev()


def page(
    txn: lmdb.Transaction,
    main: lmdb.Transaction,
    store: Store,
    ek: bytes,
    limit: int,
    state: str | None = None,
    fresh: list[Delivery] | None = None,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first. `fresh`: its deliveries still in the outbox,
    not yet in the book (pending, not attempted)."""
    data, more = [], False
    newest_first = sorted(fresh or [], key=lambda d: d.id, reverse=True)
    merged = heapq.merge(newest_first, _booked(txn, store, ek), key=lambda d: d.id, reverse=True)
    for delivery in merged:
        if state is None or delivery.state == state:
            if len(data) == limit:
                more = True
                break
            data.append(out(delivery, body_of(main, store, ek, delivery)))
    return DeliveryPage(data, more)


def replay(txn: lmdb.Transaction, store: Store, ek: bytes, msg_id: str, now_us: int) -> Delivery:
    """Send a finished delivery again with a fresh retry schedule and the same message id."""
    delivery = load(txn, store, ek, msg_id)
    if delivery is None:
        raise NotFound(f"No delivery {msg_id}.", field="deliveryId")
    if delivery.state == "pending":
        raise InvalidInput("The delivery is still pending.", field="deliveryId")
    delivery.state = "pending"
    delivery.round_start_us, delivery.round_tries = now_us, 0
    schedule(txn, store, ek, delivery, now_us)
    add_finished(txn, store, ek, -1)
    save(txn, store, ek, delivery)
    return delivery
