"""The durable webhook outbox: deliveries written in the same transaction as their event.

Keys in the `webhooks` database, per endpoint key `ek` (tenant prefix + endpoint id):

- `D` ek msg_id -> the delivery: body, state, attempts; kept after it finishes, for listing
  and replay, up to a bounded history per endpoint. Message ids start with their creation time
  in hex, so key order is time order.
- `Q` ek due msg_id -> empty: a pending delivery and when it is due (8 bytes, big-endian).
- `C` ek msg_id -> empty: a claimed delivery, in flight. The one delivery worker of a store
  (guarded by a file lock) turns every `C` back into a due `Q` when it starts, so a delivery
  whose answer was never recorded is sent again after a crash, with the same `webhook-id`.
- `S` ek -> attempt statistics of the endpoint.
"""

from __future__ import annotations

import secrets
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
_TRIM_STEP = 64  # finished deliveries removed at most per recorded outcome


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
_END = b"\xff" * 9  # sorts after every due time and message id of an endpoint


def endpoint_key(prefix: bytes, endpoint_id: str) -> bytes:
    return prefix + endpoint_id.encode()


def split_endpoint(key: bytes) -> bytes:
    """The endpoint key inside a `D`/`Q`/`C` key: tenant prefix (`ws\\0E\\0`) + 16-byte id."""
    return key[1 : key.index(b"\x00") + 3 + 16]


def delivery_key(ek: bytes, msg_id: str) -> bytes:
    return b"D" + ek + msg_id.encode()


def queue_key(ek: bytes, due_us: int, msg_id: str) -> bytes:
    return b"Q" + ek + due_us.to_bytes(8, "big") + msg_id.encode()


def claim_key(ek: bytes, msg_id: str) -> bytes:
    return b"C" + ek + msg_id.encode()


def queue_entry(key: bytes, ek: bytes) -> tuple[int, str]:
    """Due time and message id of a `Q` key."""
    at = 1 + len(ek)
    return int.from_bytes(key[at : at + 8], "big"), key[at + 8 :].decode()


def new_message_id(now_us: int) -> str:
    return f"msg_{now_us:014x}{secrets.token_hex(5)}"


def load(txn: lmdb.Transaction, store: Store, ek: bytes, msg_id: str) -> Delivery | None:
    raw = txn.get(delivery_key(ek, msg_id), db=store.webhooks)
    return None if raw is None else _dec.decode(raw)


def save(txn: lmdb.Transaction, store: Store, ek: bytes, delivery: Delivery) -> None:
    txn.put(delivery_key(ek, delivery.id), _enc.encode(delivery), db=store.webhooks)


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
    endpoint = ek[-16:].decode()
    delivery = Delivery(
        msg_id, endpoint, kind, event, body, now_us, url, "pending", 0, now_us, 0, now_us, ref=ref
    )
    save(txn, store, ek, delivery)
    txn.put(queue_key(ek, now_us, msg_id), b"", db=store.webhooks)
    return msg_id


def body_of(txn: lmdb.Transaction, store: Store, ek: bytes, delivery: Delivery) -> bytes | None:
    """The payload as sent, the same bytes on every attempt; None when the identification it
    refers to was deleted since (a deleted visitor's data is not sent any more)."""
    if delivery.ref is None:
        return delivery.body
    doc = txn.get(doc_key(ek[:-16], delivery.ref), db=store.idents)
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
    txn.put(queue_key(ek, due_us, delivery.id), b"", db=store.webhooks)


def _keys(txn: lmdb.Transaction, store: Store, head: bytes) -> list[bytes]:
    out = []
    with txn.cursor(db=store.webhooks) as cur:
        if cur.set_range(head):
            for key in cur.iternext(values=False):
                if not key.startswith(head):
                    break
                out.append(bytes(key))
    return out


def cancel_pending(txn: lmdb.Transaction, store: Store, ek: bytes) -> int:
    """Cancel every pending and in-flight delivery of an endpoint; returns how many."""
    db, cancelled = store.webhooks, 0
    queued, claimed = _keys(txn, store, b"Q" + ek), _keys(txn, store, b"C" + ek)
    ids = [queue_entry(k, ek)[1] for k in queued] + [k[1 + len(ek) :].decode() for k in claimed]
    for key in queued + claimed:
        txn.delete(key, db=db)
    for msg_id in ids:
        delivery = load(txn, store, ek, msg_id)
        if delivery is not None and delivery.state == "pending":
            delivery.state = "cancelled"
            save(txn, store, ek, delivery)
            cancelled += 1
    if cancelled:
        current = stats(txn, store, ek)
        current.finished += cancelled
        txn.put(b"S" + ek, _enc.encode(current), db=db)
    return cancelled


def remove_endpoint(txn: lmdb.Transaction, store: Store, ek: bytes) -> None:
    """Forget an endpoint's outbox: pending deliveries are cancelled, history is dropped."""
    for head in (b"Q", b"C", b"D"):
        for key in _keys(txn, store, head + ek):
            txn.delete(key, db=store.webhooks)
    txn.delete(b"S" + ek, db=store.webhooks)


def stats(txn: lmdb.Transaction, store: Store, ek: bytes) -> Stats:
    raw = txn.get(b"S" + ek, db=store.webhooks)
    return Stats() if raw is None else _stats_dec.decode(raw)


def count_attempt(
    txn: lmdb.Transaction, store: Store, ek: bytes, at_us: int, ok: bool, finished: bool
) -> Stats:
    current = stats(txn, store, ek)
    current.attempts += 1
    current.successes += ok
    current.last_attempt_us = max(current.last_attempt_us, at_us)
    current.finished += finished
    txn.put(b"S" + ek, _enc.encode(current), db=store.webhooks)
    return current


def trim_history(txn: lmdb.Transaction, store: Store, ek: bytes, keep: int) -> None:
    """Drop the oldest finished deliveries beyond `keep`, a bounded number per call."""
    current = stats(txn, store, ek)
    excess = min(current.finished - keep, _TRIM_STEP)
    if excess <= 0:
        return
    head, doomed = b"D" + ek, []
    with txn.cursor(db=store.webhooks) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head) or len(doomed) >= excess:
                    break
                if _dec.decode(value).state != "pending":
                    doomed.append(bytes(key))
    for key in doomed:
        txn.delete(key, db=store.webhooks)
    current.finished -= len(doomed)
    txn.put(b"S" + ek, _enc.encode(current), db=store.webhooks)


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


def page(
    txn: lmdb.Transaction, store: Store, ek: bytes, limit: int, state: str | None = None
) -> DeliveryPage:
    """The endpoint's deliveries, newest first."""
    head, data, more = b"D" + ek, [], False
    with txn.cursor(db=store.webhooks) as cur:
        positioned = cur.set_range(head + b"\xff")
        positioned = cur.prev() if positioned else cur.last()
        while positioned:
            key = cur.key()
            if not key.startswith(head):
                break
            delivery = _dec.decode(cur.value())
            if state is None or delivery.state == state:
                if len(data) == limit:
                    more = True
                    break
                data.append(out(delivery, body_of(txn, store, ek, delivery)))
            positioned = cur.prev()
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
    st = stats(txn, store, ek)
    st.finished = max(0, st.finished - 1)
    txn.put(b"S" + ek, _enc.encode(st), db=store.webhooks)
    save(txn, store, ek, delivery)
    return delivery
