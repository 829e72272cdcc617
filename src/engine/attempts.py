"""The delivery worker's bookkeeping: take new outbox entries, claim due deliveries, record
outcomes, recover after a crash.

All of it is written to the delivery book (`delivery_book.py`), whose LMDB environment is not
the event store's: requests never wait for these commits. The event store is only read here
(webhook records, identification documents).

A claim writes nothing: the worker keeps the `Q` keys it has in flight in memory and skips them
when it scans. The outcome is what is written, in one commit with the other outcomes and new
entries of the turn: the `Q` key goes (or moves to the retry's due time), the attempt is
logged. Should the process die before that, the key is still there and due, and the next
holder of the delivery lock sends it again with the same `webhook-id`; a delivery acknowledged
and recorded is never sent again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection

import lmdb
import msgspec

from . import delivery_book as book
from . import webhooks
from .config import WebhookConfig
from .delivery_book import Delivery
from .outbox import Entry, read_new
from .store import Store
from .timeutil import now_us as _now_us

MAX_RETRY_AFTER_S = 24 * 3600
TAKE_LIMIT = 2048  # outbox entries copied into the book per turn


class Claimed(msgspec.Struct):
    key: bytes  # its `Q` key, which stays in place while it is in flight
    ek: bytes
    id: str
    kind: str
    event: str
    body: bytes
    url: str | None
    secret: str | None
    attempt: int


class Outcome(msgspec.Struct):
    key: bytes  # the `Q` key of the claim
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
        return not is_slack(ek) and self.record(ek) is None

    def claimable(self, ek: bytes) -> bool:
        if is_slack(ek):
            return True
        record = self.record(ek)
        return record is None or record.status == "active"  # None: claimed to be forgotten


def is_slack(ek: bytes) -> bool:
    """An endpoint key of the Slack integration, not of a webhook record: the one test of
    which kind of endpoint a delivery goes to (its `kind` says the same)."""
    return ek[-16:].startswith(b"slk_")


def take_new(
    txn: lmdb.Transaction,
    store: Store,
    endpoints: Endpoints,
    entries: list[Entry],
    upto: int,
) -> None:
    """Copy new outbox entries into the book; those of deleted endpoints are dropped."""
    book.take(txn, store, (e for e in entries if not endpoints.gone(e.ek)), upto)


def scan_due(
    txn: lmdb.Transaction,
    store: Store,
    endpoints: Endpoints,
    now_us: int,
    room: Callable[[bytes], int],
    total: int,
    flying: Collection[bytes] = frozenset(),
) -> list[bytes]:
    """`Q` keys due now and not in `flying`, at most `room(ek)` per endpoint and `total` in all.

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
                    if key not in flying:
                        keys.append(bytes(key))
                        free -= 1
                    positioned = cur.next()
            positioned = cur.set_range(b"Q" + ek + b"\xff" * 9)
    return keys


def claim(
    txn: lmdb.Transaction, main: lmdb.Transaction, store: Store, endpoints: Endpoints,
    keys: list[bytes],
) -> list[Claimed]:  # fmt: skip
    """What to send for these due `Q` keys. Writes only to clear what no longer applies: a
    deleted endpoint's deliveries, a delivery whose identification was deleted."""
    db, claimed = store.book, []
    for key in keys:  # found by a scan in this transaction
        ek = book.split_endpoint(key)
        if endpoints.gone(ek):
            book.remove_endpoint(txn, store, ek)
            continue
        msg_id = book.queue_entry(key, ek)[1]
        delivery = book.load(txn, store, ek, msg_id)
        if delivery is None or delivery.state != "pending":
            txn.delete(key, db=db)
            continue
        url, secret = delivery.url, None
        if not is_slack(ek):
            record = endpoints.record(ek)
            if record is None or record.status != "active":
                continue  # only an active endpoint's deliveries go out; it stays queued
            url, secret = record.url, record.secret
        body = book.body_of(main, store, ek, delivery)
        if body is None:
            txn.delete(key, db=db)
            delivery.state = "cancelled"
            book.save(txn, store, ek, delivery)
            book.add_finished(txn, store, ek, 1)
            continue
        claimed.append(
            Claimed(key, ek, msg_id, delivery.kind, delivery.event, body, url, secret,
                    delivery.attempts + 1)
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


def recordable(txn: lmdb.Transaction, store: Store, o: Outcome) -> Delivery | None:
    """The delivery an outcome is about, while that outcome can still be recorded: its claim's
    `Q` key is in place (not cancelled in flight with its endpoint) and it is pending."""
    if txn.get(o.key, db=store.book) is None:
        return None
    delivery = book.load(txn, store, o.ek, o.id)
    return delivery if delivery is not None and delivery.state == "pending" else None


def gone_endpoints(txn: lmdb.Transaction, store: Store, outcomes: list[Outcome]) -> set[bytes]:
    """The webhook endpoints whose 410 Gone answers `record` will write down (read in `txn`, a
    transaction of the book): the caller disables them in the event store before it records
    these outcomes. A 410 that will not be recorded (its delivery was cancelled or finished
    while in flight, e.g. by an earlier 410 of the same endpoint) disables nothing: the
    endpoint may have been resumed since."""
    return {
        o.ek
        for o in outcomes
        if o.status == 410 and not is_slack(o.ek) and recordable(txn, store, o) is not None
    }


def record(
    txn: lmdb.Transaction, store: Store, outcomes: list[Outcome], config: WebhookConfig,
    now_us: int,
) -> int:  # fmt: skip
    """Write down what the receivers answered: schedule retries or finish. A `410` fails the
    delivery and cancels the endpoint's other pending ones (queued before the endpoint was
    disabled). Returns how many outcomes were recorded."""
    db, recorded = store.book, 0
    counts: dict[bytes, book.Stats] = {}  # what this call adds to each endpoint's statistics
    for o in outcomes:
        delivery = recordable(txn, store, o)
        txn.delete(o.key, db=db)
        if delivery is None:
            continue  # cancelled (endpoint deleted or disabled) while in flight, or finished
        recorded += 1
        delivery.attempts += 1
        delivery.round_tries += 1
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
        book.save(txn, store, o.ek, delivery)
        added = counts.setdefault(o.ek, book.Stats())
        added.attempts += 1
        added.successes += o.ok
        added.last_attempt_us = max(added.last_attempt_us, o.at_us)
        added.finished += delivery.state != "pending"
        if gone and not is_slack(o.ek):
            book.cancel_pending(txn, store, o.ek)
    for ek, added in counts.items():
        keep = config.history_per_endpoint if added.finished else None
        book.add_stats(txn, store, ek, added, keep)
    return recorded


class Turn(msgspec.Struct):
    claimed: list[Claimed]
    mark: int  # the outbox sequence number the book holds entries up to


def turn(
    store: Store,
    config: WebhookConfig,
    done: list[Outcome],
    free: int,
    room: Callable[[bytes], int],
    flying: Collection[bytes] = frozenset(),
    now_us: int | None = None,
) -> Turn:
    """One write to the book: take new outbox entries, record finished attempts, and claim
    what `free` slots (at most `room(ek)` per endpoint) can take besides the `flying` ones. A
    turn that only claims commits nothing."""
    now = _now_us() if now_us is None else now_us
    with store.write_book() as txn, store.read() as main:
        endpoints = Endpoints(main, store)
        mark = book.mark(txn, store)
        entries, upto = read_new(main, store, mark, TAKE_LIMIT)
        if entries:
            take_new(txn, store, endpoints, entries, upto)
        if done:
            record(txn, store, done, config, now)
        keys = scan_due(txn, store, endpoints, now, room, free, flying) if free > 0 else []
        claimed = claim(txn, main, store, endpoints, keys) if keys else []
    return Turn(claimed, upto)
