"""The delivery worker's bookkeeping: take new outbox entries, claim due deliveries, record
outcomes, recover after a crash.

All of it is written to the delivery book (`delivery_book.py`), whose LMDB environment is not
the event store's: requests never wait for these commits. The event store is only read here
(webhook records, identification documents). An outcome is recorded (durably) before the
delivery's slot is freed, so an acknowledged delivery is never sent again; a crash between the
receiver's answer and that record means one more send with the same `webhook-id`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import lmdb
import msgspec

from . import delivery_book as book
from . import webhooks
from .config import WebhookConfig
from .delivery_book import Delivery
from .outbox import legacy_keys as outbox_legacy
from .outbox import read_new
from .store import Store
from .timeutil import now_us as _now_us

MAX_RETRY_AFTER_S = 24 * 3600
TAKE_LIMIT = 2048  # outbox entries copied into the book per turn


class Claimed(msgspec.Struct):
    ek: bytes
    id: str
    kind: str
    event: str
    body: bytes
    url: str | None
    secret: str | None
    attempt: int


class Outcome(msgspec.Struct):
    ek: bytes
    id: str
    at_us: int
    status: int  # 0 when no HTTP answer came
    error: str | None
    duration_ms: float
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Endpoints:
    """Webhook records of the event store as one turn of the worker sees them."""

    def __init__(self, main: lmdb.Transaction, store: Store) -> None:
        self._main, self._store = main, store
        self._seen: dict[bytes, webhooks.WebhookRecord | None] = {}

    def record(self, ek: bytes) -> webhooks.WebhookRecord | None:
        if ek not in self._seen:
            self._seen[ek] = webhooks.find(self._main, self._store, ek)
        return self._seen[ek]

    def gone(self, ek: bytes) -> bool:
        """A webhook endpoint that was deleted: what is left of it in the book goes too."""
        return not _is_slack(ek) and self.record(ek) is None

    def claimable(self, ek: bytes) -> bool:
        if _is_slack(ek):
            return True
        record = self.record(ek)
        return record is None or record.status == "active"  # None: claimed to be forgotten


def _is_slack(ek: bytes) -> bool:
    return ek[-16:].startswith(b"slk_")


def take_new(
    txn: lmdb.Transaction,
    store: Store,
    endpoints: Endpoints,
    entries: list[tuple[bytes, Delivery]],
    upto: int,
) -> None:
    """Copy new outbox entries into the book; those of deleted endpoints are dropped."""
    book.take(txn, store, [(ek, d) for ek, d in entries if not endpoints.gone(ek)], upto)


def scan_due(
    txn: lmdb.Transaction,
    store: Store,
    endpoints: Endpoints,
    now_us: int,
    room: Callable[[bytes], int],
    total: int,
) -> list[bytes]:
    """`Q` keys due now, at most `room(ek)` per endpoint and `total` in all.

    The scan jumps from endpoint to endpoint, so a long backlog of one endpoint (or a paused
    one) costs one seek, not one step per entry.
    """
    keys: list[bytes] = []
    with txn.cursor(db=store.book) as cur:
        positioned = cur.set_range(b"Q")
        while positioned and len(keys) < total:
            key = cur.key()
            if not key.startswith(b"Q"):
                break
            ek = book.split_endpoint(key)
            free = min(room(ek), total - len(keys))
            if free > 0 and endpoints.claimable(ek):
                head = b"Q" + ek
                while positioned and free > 0:
                    key = cur.key()
                    if not key.startswith(head) or book.queue_entry(key, ek)[0] > now_us:
                        break
                    keys.append(bytes(key))
                    free -= 1
                    positioned = cur.next()
            positioned = cur.set_range(b"Q" + ek + b"\xff" * 9)
    return keys


def claim(
    txn: lmdb.Transaction, main: lmdb.Transaction, store: Store, endpoints: Endpoints,
    keys: list[bytes],
) -> list[Claimed]:  # fmt: skip
    """Move due deliveries from `Q` to `C` and count the attempt; returns what to send."""
    db, claimed = store.book, []
    for key in keys:
        if txn.get(key, db=db) is None:
            continue  # cancelled or already handled since the scan
        ek = book.split_endpoint(key)
        if endpoints.gone(ek):
            book.remove_endpoint(txn, store, ek)
            continue
        msg_id = book.queue_entry(key, ek)[1]
        delivery = book.load(txn, store, ek, msg_id)
        url, secret = None, None
        if delivery is not None and delivery.kind == "webhook":
            record = endpoints.record(ek)
            if record is None or record.status != "active":
                continue  # paused since the scan: it stays queued
            url, secret = record.url, record.secret
        elif delivery is not None:
            url = delivery.url
        txn.delete(key, db=db)
        if delivery is None or delivery.state != "pending":
            continue
        body = book.body_of(main, store, ek, delivery)
        if body is None:
            delivery.state = "cancelled"
            book.save(txn, store, ek, delivery)
            continue
        txn.put(book.claim_key(ek, msg_id), b"", db=db)
        delivery.attempts += 1
        delivery.round_tries += 1
        book.save(txn, store, ek, delivery)
        claimed.append(
            Claimed(ek, msg_id, delivery.kind, delivery.event, body, url, secret,
                    delivery.attempts)
        )  # fmt: skip
    return claimed


def next_due(
    delivery: Delivery, config: WebhookConfig, now_us: int, retry_after_s: float | None
) -> int | None:
    """When the next attempt of this round is due, or None when the schedule is spent."""
    plan, i = config.retry_schedule, delivery.round_tries
    if i >= len(plan):
        return None
    due = delivery.round_start_us + plan[i] * 1e6
    gap = (plan[i] - plan[i - 1]) * 1e6 if i else 0.0
    due += random.uniform(-config.retry_jitter, config.retry_jitter) * gap
    if retry_after_s is not None:
        due = max(due, now_us + min(retry_after_s, MAX_RETRY_AFTER_S) * 1e6)
    return max(int(due), now_us)


def record(
    txn: lmdb.Transaction, store: Store, outcomes: list[Outcome], config: WebhookConfig,
    now_us: int,
) -> tuple[int, list[bytes]]:  # fmt: skip
    """Write down what the receivers answered: schedule retries or finish. A `410` fails the
    delivery and cancels the endpoint's other pending ones. Returns how many outcomes were
    recorded, and the endpoints that answered 410 (the caller disables them in the event
    store)."""
    db, gone_eks, recorded = store.book, [], 0
    for o in outcomes:
        ck = book.claim_key(o.ek, o.id)
        if txn.get(ck, db=db) is None:
            continue  # cancelled (endpoint deleted or disabled) while in flight
        txn.delete(ck, db=db)
        delivery = book.load(txn, store, o.ek, o.id)
        if delivery is None or delivery.state != "pending":
            continue
        recorded += 1
        delivery.log.append(book.Attempt(o.at_us, o.status, o.error, o.duration_ms))
        del delivery.log[: -book.MAX_LOG]
        gone = o.status == 410
        due = None if o.ok or gone else next_due(delivery, config, now_us, o.retry_after_s)
        if o.ok:
            delivery.state = "delivered"
        elif due is None:
            delivery.state = "failed"
        else:
            book.schedule(txn, store, o.ek, delivery, due)
        finished = delivery.state != "pending"
        book.save(txn, store, o.ek, delivery)
        book.count_attempt(txn, store, o.ek, o.at_us, o.ok, finished)
        if gone and delivery.kind == "webhook":
            book.cancel_pending(txn, store, o.ek)
            gone_eks.append(o.ek)
        if finished:
            book.trim_history(txn, store, o.ek, config.history_per_endpoint)
    return recorded, gone_eks


def has_claims(txn: lmdb.Transaction, store: Store) -> bool:
    with txn.cursor(db=store.book) as cur:
        return cur.set_range(b"C") and cur.key().startswith(b"C")


def recover_claims(txn: lmdb.Transaction, store: Store, now_us: int) -> int:
    """Run by a delivery worker when it takes the store's delivery lock: whatever the previous
    holder had in flight is due again at once (it holds no lock, so it sends nothing more)."""
    db = store.book
    keys = []
    with txn.cursor(db=db) as cur:
        if cur.set_range(b"C"):
            for key in cur.iternext(values=False):
                if not key.startswith(b"C"):
                    break
                keys.append(bytes(key))
    for key in keys:
        txn.delete(key, db=db)
        ek = book.split_endpoint(key)
        delivery = book.load(txn, store, ek, key[1 + len(ek) :].decode())
        if delivery is not None and delivery.state == "pending":
            book.schedule(txn, store, ek, delivery, now_us)
            book.save(txn, store, ek, delivery)
    return len(keys)


def adopt_legacy(txn: lmdb.Transaction, store: Store, found: list[tuple[bytes, bytes]],
                 now_us: int) -> None:  # fmt: skip
    """Move outbox records an earlier version kept in the event store into the book: history
    and statistics as they were, pending and in-flight deliveries due at once. Records already
    in the book win, so adopting twice (a crash before the old keys were dropped) changes
    nothing."""
    db = store.book
    for key, value in found:
        if key[:1] in (b"D", b"S"):
            txn.put(key, value, db=db, overwrite=False)
        elif key[:1] == b"Q":
            txn.put(key, b"", db=db, overwrite=False)
        else:  # C: in flight when that version stopped
            ek = book.split_endpoint(key)
            msg_id = key[1 + len(ek) :].decode()
            txn.put(book.queue_key(ek, now_us, msg_id), b"", db=db, overwrite=False)


class Turn(msgspec.Struct):
    claimed: list[Claimed]
    gone: list[bytes]  # endpoints that answered 410, to disable in the event store
    mark: int  # the outbox sequence number the book holds entries up to


def turn(
    store: Store,
    config: WebhookConfig,
    done: list[Outcome],
    free: int,
    room: Callable[[bytes], int],
    now_us: int | None = None,
) -> Turn:
    """One write to the book: take new outbox entries, record finished attempts, and claim
    what `free` slots (at most `room(ek)` per endpoint) can take."""
    now = _now_us() if now_us is None else now_us
    with store.write_book() as txn, store.read() as main:
        endpoints = Endpoints(main, store)
        mark = book.mark(txn, store)
        entries, upto = read_new(main, store, mark, TAKE_LIMIT)
        if entries:
            take_new(txn, store, endpoints, entries, upto)
        gone = record(txn, store, done, config, now)[1] if done else []
        keys = scan_due(txn, store, endpoints, now, room, free) if free > 0 else []
        claimed = claim(txn, main, store, endpoints, keys) if keys else []
    return Turn(claimed, gone, upto)


def take_over(store: Store, now_us: int | None = None) -> list[bytes]:
    """Run by a delivery worker when it takes the store's delivery lock: claims of the
    previous holder are due again, and outbox records of an earlier version move into the book.
    Returns the old keys, for the caller to drop from the event store."""
    now = _now_us() if now_us is None else now_us
    with store.read() as main:
        legacy = outbox_legacy(main, store)
    with store.read_book() as txn:
        stranded = has_claims(txn, store)
    if legacy or stranded:  # opening a store with nothing in flight writes nothing
        with store.write_book() as txn:
            adopt_legacy(txn, store, legacy, now)
            recover_claims(txn, store, now)
    return [key for key, _ in legacy]
