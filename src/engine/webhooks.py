"""Webhook endpoints at rest: records, their create/update/delete operations and a cache.

Records live in the `webhooks` database (`W` tenant prefix + id), next to the outbox. Every change
bumps the tenant's webhooks version (`V` prefix) in the same transaction; the identification
path keeps the endpoint list per tenant in `EndpointCache` and reloads it only when that
version moved, so a request with no webhook configured pays one key read.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

import lmdb
import msgspec

from . import delivery_book as book
from . import outbox
from .errors import InvalidInput, NotFound
from .rules import Verdict
from .signing import new_secret
from .store import Store
from .tenant import Tenant
from .timeutil import iso
from .writer import WriteContext

EventType = Literal["identification", "rule_match", "list_update"]
EVENT_TYPES: tuple[str, ...] = ("identification", "rule_match", "list_update")
Status = Literal["active", "paused", "disabled"]
MAX_WEBHOOKS = 100  # per environment of a workspace


class FiltersIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    verdict: list[Verdict] | Verdict | None = None
    ruleId: list[str] | str | None = None
    botDetected: bool | None = None


class Filters(msgspec.Struct, omit_defaults=True):
    verdict: list[str] | None = None
    ruleId: list[str] | None = None
    botDetected: bool | None = None


class WebhookIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    events: list[EventType] | None = None
    filters: FiltersIn | None = None
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=256)] | None = None


class WebhookPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None
    events: list[EventType] | None = None
    status: Literal["active", "paused"] | None = None
    filters: FiltersIn | None = None


class WebhookRecord(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    filters: Filters
    secret: str
    status: Status
    created_us: int
    updated_us: int
    disabled_reason: str | None = None


class WebhookCreated(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    filters: Filters
    status: Status
    secret: str
    createdAt: str


class WebhookOut(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    filters: Filters
    status: Status
    createdAt: str
    updatedAt: str
    lastDeliveryAt: str | None
    successRate: float | None


class WebhookPage(msgspec.Struct):
    data: list[WebhookOut]
    total: int


class WebhookUpdated(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    filters: Filters
    status: Status
    updatedAt: str


class WebhookDeleted(msgspec.Struct):
    deleted: bool
    webhookId: str


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(WebhookRecord)


def _key(prefix: bytes, webhook_id: str) -> bytes:
    return b"W" + prefix + webhook_id.encode()


def _version_key(prefix: bytes) -> bytes:
    return b"V" + prefix


def version(txn: lmdb.Transaction, store: Store, prefix: bytes) -> int:
    raw = txn.get(_version_key(prefix), db=store.webhooks)
    return int.from_bytes(raw, "little") if raw else 0


def _bump(txn: lmdb.Transaction, store: Store, prefix: bytes) -> None:
    new = (version(txn, store, prefix) + 1).to_bytes(8, "little")
    txn.put(_version_key(prefix), new, db=store.webhooks)


def _put(txn: lmdb.Transaction, store: Store, prefix: bytes, record: WebhookRecord) -> None:
    txn.put(_key(prefix, record.id), _enc.encode(record), db=store.webhooks)
    _bump(txn, store, prefix)


def get(txn: lmdb.Transaction, store: Store, prefix: bytes, webhook_id: str) -> WebhookRecord:
    raw = txn.get(_key(prefix, webhook_id), db=store.webhooks)
    if raw is None:
        raise NotFound(f"No webhook {webhook_id}.", field="webhookId")
    return _dec.decode(raw)


def find(txn: lmdb.Transaction, store: Store, ek: bytes) -> WebhookRecord | None:
    """The record of an endpoint key, or None (deleted, or not a registered webhook)."""
    raw = txn.get(b"W" + ek, db=store.webhooks)
    return None if raw is None else _dec.decode(raw)


def all_webhooks(txn: lmdb.Transaction, store: Store, prefix: bytes) -> list[WebhookRecord]:
    head, records = b"W" + prefix, []
    with txn.cursor(db=store.webhooks) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                records.append(_dec.decode(value))
    return sorted(records, key=lambda r: (r.created_us, r.id))


def _filters(given: FiltersIn | None) -> Filters:
    if given is None:
        return Filters()
    verdict, rule_id = given.verdict, given.ruleId
    return Filters(
        [verdict]
        if isinstance(verdict, str)
        else (list(dict.fromkeys(verdict)) if verdict else None),
        [rule_id]
        if isinstance(rule_id, str)
        else (list(dict.fromkeys(rule_id)) if rule_id else None),
        given.botDetected,
    )


def _events(given: list[str] | None) -> list[str]:
    if given is None:
        return list(EVENT_TYPES)
    if not given:
        raise InvalidInput("'events' must name at least one event type.", field="events")
    return list(dict.fromkeys(given))


def out(record: WebhookRecord, stats: book.Stats) -> WebhookOut:
    rate = round(stats.successes / stats.attempts, 4) if stats.attempts else None
    last = iso(stats.last_attempt_us) if stats.last_attempt_us else None
    return WebhookOut(
        record.id, record.url, record.events, record.filters, record.status,
        iso(record.created_us), iso(record.updated_us), last, rate,
    )  # fmt: skip


def listing(
    txn: lmdb.Transaction,
    book_txn: lmdb.Transaction,
    store: Store,
    prefix: bytes,
    status: str | None,
    limit: int,
    offset: int,
) -> WebhookPage:
    chosen = [r for r in all_webhooks(txn, store, prefix) if status is None or r.status == status]
    data = [
        out(r, book.stats(book_txn, store, outbox.endpoint_key(prefix, r.id)))
        for r in chosen[offset : offset + limit]
    ]
    return WebhookPage(data, len(chosen))


class CreateWebhook:
    """`request.url` was checked against the webhook config before this was queued."""

    def __init__(self, tenant: Tenant, request: WebhookIn) -> None:
        self.tenant, self.request = tenant, request

    def apply(self, ctx: WriteContext) -> WebhookCreated:
        txn, store, prefix, req = ctx.txn, ctx.store, self.tenant.prefix, self.request
        if len(all_webhooks(txn, store, prefix)) >= MAX_WEBHOOKS:
            raise InvalidInput(f"At most {MAX_WEBHOOKS} webhooks per environment.", field="url")
        record = WebhookRecord(
            f"whk_{secrets.token_hex(6)}", req.url, _events(req.events), _filters(req.filters),
            req.secret or new_secret(), "active", ctx.now_us, ctx.now_us,
        )  # fmt: skip
        _put(txn, store, prefix, record)
        return WebhookCreated(
            record.id, record.url, record.events, record.filters, record.status, record.secret,
            iso(record.created_us),
        )  # fmt: skip


class UpdateWebhook:
    """`patch.url`, when given, was checked against the webhook config before this was queued."""

    def __init__(self, tenant: Tenant, webhook_id: str, patch: WebhookPatch) -> None:
        self.tenant, self.webhook_id, self.patch = tenant, webhook_id, patch

    def apply(self, ctx: WriteContext) -> WebhookUpdated:
        txn, store, prefix, p = ctx.txn, ctx.store, self.tenant.prefix, self.patch
        record = get(txn, store, prefix, self.webhook_id)
        if p.url is not None:
            record.url = p.url
        if p.events is not None:
            record.events = _events(p.events)
        if p.filters is not None:
            record.filters = _filters(p.filters)
        if p.status is not None:
            # Resuming also re-enables an endpoint that was disabled by a 410 answer.
            record.status = p.status
            record.disabled_reason = None
        record.updated_us = ctx.now_us
        _put(txn, store, prefix, record)
        return WebhookUpdated(
            record.id, record.url, record.events, record.filters, record.status,
            iso(record.updated_us),
        )  # fmt: skip


class DeleteWebhook:
    def __init__(self, tenant: Tenant, webhook_id: str) -> None:
        self.tenant, self.webhook_id = tenant, webhook_id

    def apply(self, ctx: WriteContext) -> WebhookDeleted:
        txn, store, prefix = ctx.txn, ctx.store, self.tenant.prefix
        record = get(txn, store, prefix, self.webhook_id)
        txn.delete(_key(prefix, record.id), db=store.webhooks)
        _bump(txn, store, prefix)
        return WebhookDeleted(True, record.id)


class Disable:
    """The receiver answered 410 Gone: stop sending to it until a user resumes it. Committed
    before the 410 outcome reaches the delivery book, which then cancels what is still
    pending for the endpoint.

    Only an active endpoint changes. One a user paused while the attempt was in flight stays
    paused (it sends and queues nothing either, and resuming it is the same call); one already
    disabled keeps the reason and time of that."""

    def __init__(self, ek: bytes, reason: str) -> None:
        self.ek, self.reason = ek, reason

    def apply(self, ctx: WriteContext) -> None:
        record = find(ctx.txn, ctx.store, self.ek)
        if record is None or record.status != "active":
            return
        record.status, record.disabled_reason = "disabled", self.reason
        record.updated_us = ctx.now_us
        _put(ctx.txn, ctx.store, self.ek[: -len(record.id)], record)


class EndpointCache:
    """Each tenant's webhook records, reloaded when its webhooks version moves."""

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[int, list[WebhookRecord]]] = {}

    def get(self, txn: lmdb.Transaction, store: Store, prefix: bytes) -> list[WebhookRecord]:
        current = version(txn, store, prefix)
        cached = self._cache.get(prefix)
        if cached is not None and cached[0] == current:
            return cached[1]
        records = all_webhooks(txn, store, prefix) if current else []
        self._cache[prefix] = (current, records)
        return records
