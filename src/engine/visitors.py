"""Reading identifications back (one event, pages of events, visitors) and deleting a visitor.

Listing walks the time index newest first. The cursor is the position of the last row returned
(timestamp and request id), so pages stay stable while new events arrive: new rows sort before
the first page and never shift later pages.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import lmdb
import msgspec
import numpy as np

from . import identification as ident
from . import lists, pending_rows, visitor_index
from . import visitor_records as records
from .errors import InvalidInput, NotFound
from .scan import overlapping
from .segments import add_tombstones, read_columns
from .store import Store
from .tenant import Tenant
from .timeutil import iso, now_us
from .writer import WriteContext


class EventListItem(msgspec.Struct):
    requestId: str
    visitorId: str
    confidence: float
    verdict: str | None
    timestamp: str
    signals: dict[str, bool]


class EventPage(msgspec.Struct, omit_defaults=True):
    data: list[EventListItem]
    hasMore: bool
    nextCursor: str | None = None


class Visitor(msgspec.Struct):
    visitorId: str
    firstSeenAt: str
    lastSeenAt: str
    totalVisits: int
    linkedAccounts: int
    devices: list[records.DeviceProfile]
    lists: list[str]
    ips: list[str]


class Deleted(msgspec.Struct):
    deleted: bool
    visitorId: str


def get_event(txn: lmdb.Transaction, store: Store, tenant: Tenant, request_id: str) -> bytes:
    raw = txn.get(records.doc_key(tenant.prefix, request_id), db=store.idents)
    if raw is None:
        raise NotFound(f"No event {request_id}.", field="requestId")
    return bytes(raw)


CURSOR_PATTERN = r"^cur_[A-Za-z0-9_-]+$"  # what encode_cursor issues


def encode_cursor(ts: int, request_id: str) -> str:
    raw = ts.to_bytes(8, "big") + request_id.encode()
    return "cur_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        if not cursor.startswith("cur_"):
            raise ValueError
        body = cursor[4:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if len(raw) < 9:
            raise ValueError
        return int.from_bytes(raw[:8], "big"), raw[8:].decode()
    except ValueError:
        raise InvalidInput("'cursor' is not a cursor this API returned.", field="cursor") from None


def list_events(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    *,
    limit: int,
    before_us: int | None = None,
    after_us: int | None = None,
    cursor: str | None = None,
    accept: Callable[[records.EventSummary], bool] | None = None,
    visitor_id: str | None = None,
) -> EventPage:
    prefix = tenant.prefix
    if visitor_id is not None:
        head, db = records.visitor_events_prefix(prefix, visitor_id), store.visitors
    else:
        head, db = b"t" + prefix, store.idents
    upper = head + b"\xff" * 9
    if before_us is not None:
        upper = head + max(0, before_us).to_bytes(8, "big")
    if cursor is not None:
        ts, rid = decode_cursor(cursor)
        upper = min(upper, head + ts.to_bytes(8, "big") + rid.encode())
    lower = head + (max(0, after_us + 1).to_bytes(8, "big") if after_us is not None else b"")
    items: list[EventListItem] = []
    has_more = False
    last: tuple[int, str] | None = None
    with txn.cursor(db=db) as cur:
        # Position at the first key >= upper, then walk backwards (newest first).
        found = cur.set_range(upper)
        moved = cur.prev() if found else cur.last()
        while moved:
            key = cur.key()
            if not key.startswith(head) or key < lower:
                break
            ts = int.from_bytes(key[len(head) : len(head) + 8], "big")
            rid = key[len(head) + 8 :].decode()
            summary = (
                records.decode_summary(cur.value())
                if visitor_id is None
                else _summary_of(txn, store, prefix, rid)
            )
            if summary is not None and (accept is None or accept(summary)):
                if len(items) == limit:
                    has_more = True
                    break
                items.append(
                    EventListItem(
                        requestId=rid,
                        visitorId=summary.visitor,
                        confidence=summary.confidence,
                        verdict=summary.verdict,
                        timestamp=iso(ts),
                        signals={"bot": summary.bot, "vpn": summary.vpn},
                    )
                )
                last = (ts, rid)
            moved = cur.prev()
    next_cursor = encode_cursor(*last) if has_more and last else None
    return EventPage(items, has_more, next_cursor)


def _summary_of(
    txn: lmdb.Transaction, store: Store, prefix: bytes, request_id: str
) -> records.EventSummary | None:
    raw = txn.get(records.doc_key(prefix, request_id), db=store.idents)
    if raw is None:
        return None
    doc = msgspec.json.decode(raw)
    return records.EventSummary(
        doc["visitorId"],
        doc["verdict"],
        doc["signals"]["bot"]["detected"],
        doc["signals"]["vpn"]["detected"],
        doc["confidence"],
    )


def get_visitor(txn: lmdb.Transaction, store: Store, tenant: Tenant, visitor_id: str) -> Visitor:
    raw = txn.get(records.visitor_key(tenant.prefix, visitor_id), db=store.visitors)
    if raw is None:
        raise NotFound(f"No visitor {visitor_id}.", field="visitorId")
    record = records.decode_record(raw)
    return Visitor(
        visitorId=record.id,
        firstSeenAt=iso(record.first_seen_us),
        lastSeenAt=iso(record.last_seen_us),
        totalVisits=record.total,
        linkedAccounts=len(record.linked),
        devices=record.devices,
        lists=lists.memberships(txn, store, tenant, "visitor", record.id, now_us()),
        ips=sorted({ip for ip, _ in record.ips}),
    )


class DeleteVisitor:
    """GDPR deletion: everything of one visitor goes in one transaction.

    Documents, indexes, the visitor record and its dictionary entry are deleted at once; rows of
    the columnar table are hidden by tombstones at once and physically removed by the next
    compaction of their segments.
    """

    def __init__(self, tenant: Tenant, visitor_id: str) -> None:
        self.tenant = tenant
        self.visitor_id = visitor_id

    def apply(self, ctx: WriteContext) -> Deleted:
        prefix, txn, store = self.tenant.prefix, ctx.txn, ctx.store
        vkey = records.visitor_key(prefix, self.visitor_id)
        raw = txn.get(vkey, db=store.visitors)
        if raw is None:
            raise NotFound(f"No visitor {self.visitor_id}.", field="visitorId")
        record = records.decode_record(raw)
        # Events: documents, time index and visitor index.
        head = records.visitor_events_prefix(prefix, self.visitor_id)
        keys = []
        with txn.cursor(db=store.visitors) as cur:
            if cur.set_range(head):
                for key in cur.iternext(values=False):
                    if not key.startswith(head):
                        break
                    keys.append(bytes(key))
        for key in keys:
            ts = int.from_bytes(key[len(head) : len(head) + 8], "big")
            rid = key[len(head) + 8 :].decode()
            txn.delete(records.doc_key(prefix, rid), db=store.idents)
            txn.delete(records.time_key(prefix, ts, rid), db=store.idents)
            txn.delete(key, db=store.visitors)
        # Matching indexes and counts, so that the device gets a new visitor id next time.
        visitor_index.forget(txn, store.visitors, prefix, record)
        for ip, _ in record.ips:
            key = records.ip_index_key(prefix, ip)
            records.ip_index_remove(txn, store.visitors, key, self.visitor_id)
        txn.delete(vkey, db=store.visitors)
        lists.forget_visitor(ctx, self.tenant, self.visitor_id)
        # Columnar rows: tombstones now, physical removal at compaction.
        ident_id = ctx.interner.forget(txn, prefix, ident.VISITOR_KIND, self.visitor_id)
        if ident_id is not None:
            for number, _ in overlapping(txn, store, prefix, "identifications", 0, 2**62):
                visitors = read_columns(txn, store, prefix, "identifications", number, ["visitor"])
                rows = np.flatnonzero(visitors["visitor"] == ident_id)
                if len(rows):
                    add_tombstones(txn, store, prefix, "identifications", number, rows.tolist())
            ctx.written.add((prefix, "identifications"))
            ctx.drop_pending(prefix, "identifications", "visitor", ident_id)
            pending_rows.delete_where(
                txn, store.idents, prefix, "identifications", "visitor", ident_id
            )
        return Deleted(True, self.visitor_id)
