"""The delivery worker's writes: claim due deliveries, record outcomes, recover after a crash.

Each is a small writer operation, so claims and outcomes of many deliveries share group
commits with everything else the process writes. An outcome is recorded (durably) before the
delivery's slot is freed, so an acknowledged delivery is never sent again; a crash between the
receiver's answer and that record means one more send with the same `webhook-id`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import lmdb
import msgspec

from . import outbox, webhooks
from .config import WebhookConfig
from .store import Store
from .writer import WriteContext

MAX_RETRY_AFTER_S = 24 * 3600


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


def _claimable(txn: lmdb.Transaction, store: Store, ek: bytes) -> bool:
    if ek[-16:].startswith(b"slk_"):
        return True
    record = webhooks.find(txn, store, ek)
    return record is not None and record.status == "active"


def scan_due(
    txn: lmdb.Transaction, store: Store, now_us: int, room: Callable[[bytes], int], total: int
) -> list[bytes]:
    """`Q` keys due now, at most `room(ek)` per endpoint and `total` in all.

    The scan jumps from endpoint to endpoint, so a long backlog of one endpoint (or a paused
    one) costs one seek, not one step per entry.
    """
    keys: list[bytes] = []
    with txn.cursor(db=store.webhooks) as cur:
        positioned = cur.set_range(b"Q")
        while positioned and len(keys) < total:
            key = cur.key()
            if not key.startswith(b"Q"):
                break
            ek = outbox.split_endpoint(key)
            free = min(room(ek), total - len(keys))
            if free > 0 and _claimable(txn, store, ek):
                head = b"Q" + ek
                while positioned and free > 0:
                    key = cur.key()
                    if not key.startswith(head) or outbox.queue_entry(key, ek)[0] > now_us:
                        break
                    keys.append(bytes(key))
                    free -= 1
                    positioned = cur.next()
            positioned = cur.set_range(b"Q" + ek + b"\xff" * 9)
    return keys


class ClaimDeliveries:
    """Move due deliveries from `Q` to `C` and count the attempt; returns what to send."""

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = keys

    def apply(self, ctx: WriteContext) -> list[Claimed]:
        txn, store, db = ctx.txn, ctx.store, ctx.store.webhooks
        claimed = []
        for key in self.keys:
            if txn.get(key, db=db) is None:
                continue  # cancelled or already handled since the scan
            ek = outbox.split_endpoint(key)
            msg_id = outbox.queue_entry(key, ek)[1]
            delivery = outbox.load(txn, store, ek, msg_id)
            url, secret = None, None
            if delivery is not None and delivery.kind == "webhook":
                record = webhooks.find(txn, store, ek)
                if record is None or record.status != "active":
                    continue  # paused since the scan: it stays queued
                url, secret = record.url, record.secret
            elif delivery is not None:
                url = delivery.url
            txn.delete(key, db=db)
            if delivery is None or delivery.state != "pending":
                continue
            body = outbox.body_of(txn, store, ek, delivery)
            if body is None:
                delivery.state = "cancelled"
                outbox.save(txn, store, ek, delivery)
                continue
            txn.put(outbox.claim_key(ek, msg_id), b"", db=db)
            delivery.attempts += 1
            delivery.round_tries += 1
            outbox.save(txn, store, ek, delivery)
            claimed.append(
                Claimed(ek, msg_id, delivery.kind, delivery.event, body, url, secret,
                        delivery.attempts)
            )  # fmt: skip
        return claimed


def next_due(
    delivery: outbox.Delivery, config: WebhookConfig, now_us: int, retry_after_s: float | None
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


class RecordOutcomes:
    """Write down what the receivers answered; schedule retries, finish, or disable on 410."""

    def __init__(self, outcomes: list[Outcome], config: WebhookConfig) -> None:
        self.outcomes, self.config = outcomes, config

    def apply(self, ctx: WriteContext) -> int:
        txn, store, db, recorded = ctx.txn, ctx.store, ctx.store.webhooks, 0
        for o in self.outcomes:
            ck = outbox.claim_key(o.ek, o.id)
            if txn.get(ck, db=db) is None:
                continue  # cancelled (endpoint deleted or disabled) while in flight
            txn.delete(ck, db=db)
            delivery = outbox.load(txn, store, o.ek, o.id)
            if delivery is None or delivery.state != "pending":
                continue
            recorded += 1
            delivery.log.append(outbox.Attempt(o.at_us, o.status, o.error, o.duration_ms))
            del delivery.log[: -outbox.MAX_LOG]
            gone = o.status == 410
            due = (
                None
                if o.ok or gone
                else next_due(delivery, self.config, ctx.now_us, o.retry_after_s)
            )
            if o.ok:
                delivery.state = "delivered"
            elif due is None:
                delivery.state = "failed"
            else:
                outbox.schedule(txn, store, o.ek, delivery, due)
            finished = delivery.state != "pending"
            outbox.save(txn, store, o.ek, delivery)
            outbox.count_attempt(txn, store, o.ek, o.at_us, o.ok, finished)
            if gone and delivery.kind == "webhook":
                webhooks.disable(txn, store, o.ek, "The receiver answered 410 Gone.", ctx.now_us)
            if finished:
                outbox.trim_history(txn, store, o.ek, self.config.history_per_endpoint)
        return recorded


class RecordAndClaim:
    """One turn of the delivery worker: the outcomes, then the claims, in one transaction."""

    def __init__(self, outcomes: list[Outcome], keys: list[bytes], config: WebhookConfig) -> None:
        self.record = RecordOutcomes(outcomes, config)
        self.claim = ClaimDeliveries(keys)

    def apply(self, ctx: WriteContext) -> list[Claimed]:
        if self.record.outcomes:
            self.record.apply(ctx)
        return self.claim.apply(ctx) if self.claim.keys else []


def has_claims(txn: lmdb.Transaction, store: Store) -> bool:
    with txn.cursor(db=store.webhooks) as cur:
        return cur.set_range(b"C") and cur.key().startswith(b"C")


class RecoverClaims:
    """Run by a delivery worker when it takes the store's delivery lock: whatever the previous
    holder had in flight is due again at once (it holds no lock, so it sends nothing more)."""

    def apply(self, ctx: WriteContext) -> int:
        txn, store, db, now = ctx.txn, ctx.store, ctx.store.webhooks, ctx.now_us
        keys = []
        with txn.cursor(db=db) as cur:
            if cur.set_range(b"C"):
                for key in cur.iternext(values=False):
                    if not key.startswith(b"C"):
                        break
                    keys.append(bytes(key))
        for key in keys:
            txn.delete(key, db=db)
            ek = outbox.split_endpoint(key)
            delivery = outbox.load(txn, store, ek, key[1 + len(ek) :].decode())
            if delivery is not None and delivery.state == "pending":
                outbox.schedule(txn, store, ek, delivery, now)
                outbox.save(txn, store, ek, delivery)
        return len(keys)
