"""Behavioural events: the message types, their validation, and the operation that stores them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from . import codec, cohort_watch, dictionary
from . import visitor_records as records
from .config import EngineConfig
from .errors import BatchTooLarge, InvalidInput
from .tenant import Tenant
from .timeutil import month_of, to_us
from .writer import WriteContext

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# RFC 3339 in the document; the decoder also takes a date-time without an offset (UTC).
Instant = Annotated[
    datetime,
    msgspec.Meta(
        extra_json_schema={
            "format": "date-time",
            "description": "Not before 1970; at most max_future_seconds (default 24 h) ahead of "
            "the server's clock once corrected by sent_at.",
        }
    ),
]


class EventIn(msgspec.Struct, kw_only=True):
    user_id: Name
    event: Name
    timestamp: Instant | None = None
    properties: Annotated[
        msgspec.Raw,
        msgspec.Meta(
            extra_json_schema={
                "type": ["object", "null"],
                "description": "JSON object, at most 32 KB encoded; null is none.",
            }
        ),
    ] = msgspec.field(default_factory=msgspec.Raw)
    insert_id: Name | None = None
    sent_at: Instant | None = None
    request_id: Name | None = None


class BatchIn(msgspec.Struct):
    # At most `EngineConfig.max_batch_events`, checked apart: more answers batch_too_large.
    events: Annotated[list[EventIn], msgspec.Meta(min_length=1)]


class IngestResult(msgspec.Struct):
    accepted: int
    stored: int
    deduplicated: int


_event_decoder = msgspec.json.Decoder(EventIn)
_batch_decoder = msgspec.json.Decoder(BatchIn)

# A validated row, in the column order of the `events` table minus the interned strings.
Row = tuple[int, str, str, bytes, bytes, bytes]


def decode_event(body: bytes) -> EventIn:
    return codec.decode(_event_decoder, body)


def decode_batch(body: bytes, config: EngineConfig) -> list[EventIn]:
    events = codec.decode(_batch_decoder, body).events
    check_batch_size(events, config)
    return events


def check_batch_size(events: list[EventIn], config: EngineConfig) -> None:
    if not events:
        raise InvalidInput("'events' must hold at least one event.", field="events")
    if len(events) > config.max_batch_events:
        raise BatchTooLarge(
            f"A batch holds at most {config.max_batch_events} events; got {len(events)}.",
            field="events",
        )


def prepare(
    event: EventIn, received_us: int, config: EngineConfig, where: str = "", decoded: bool = True
) -> Row:
    """Validate one event and resolve its timestamp. Raises InvalidInput naming the field.

    `decoded` says the event came from `decode_event`/`decode_batch`, whose decoder already
    checked lengths and JSON syntax; an EventIn built in code (the embedded engine) gets those
    checks here.
    """
    if not decoded:
        _check_built(event, config, where)
    if event.timestamp is None:
        ts = received_us
    else:
        ts = to_us(event.timestamp)
        if event.sent_at is not None:
            # The client's clock may be off: keep the event's age as the client measured it.
            ts = received_us - (to_us(event.sent_at) - ts)
    if ts > received_us + config.max_future_seconds * 1_000_000:
        raise InvalidInput(
            f"'{where}timestamp' is more than {config.max_future_seconds // 3600} h in the future.",
            field=f"{where}timestamp",
        )
    if ts < 0:
        raise InvalidInput(f"'{where}timestamp' is before 1970.", field=f"{where}timestamp")
    props = bytes(event.properties)
    if props:
        if props == b"null":
            props = b""
        elif props[:1] != b"{":
            raise InvalidInput(
                f"'{where}properties' must be a JSON object.", field=f"{where}properties"
            )
        elif len(props) > config.max_properties_bytes:
            raise InvalidInput(
                f"'{where}properties' exceeds {config.max_properties_bytes} bytes encoded.",
                field=f"{where}properties",
            )
        else:
            try:
                props.decode()
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"'{where}properties' is not valid UTF-8.", field=f"{where}properties"
                ) from None
    insert_id = event.insert_id.encode() if event.insert_id else b""
    request_id = event.request_id.encode() if event.request_id else b""
    return (ts, event.user_id, event.event, props, insert_id, request_id)


def prepare_batch(
    events: list[EventIn], received_us: int, config: EngineConfig, decoded: bool = True
) -> list[Row]:
    rows = []
    for i, event in enumerate(events):
        try:
            rows.append(prepare(event, received_us, config, "", decoded))
        except InvalidInput as exc:
            # The path is built only on failure: most batches never need it.
            where = f"events[{i}]."
            raise InvalidInput(
                exc.message.replace("'", f"'{where}", 1), field=f"{where}{exc.field}"
            ) from None
    return rows


def _check_built(event: EventIn, config: EngineConfig, where: str) -> None:
    for name in ("user_id", "event", "insert_id", "request_id"):
        value = getattr(event, name)
        if value is None and name in ("insert_id", "request_id"):
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= 200:
            raise InvalidInput(
                f"'{where}{name}' must be 1 to 200 characters.", field=f"{where}{name}"
            )
    props = bytes(event.properties)
    if props:
        try:
            msgspec.json.decode(props)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise InvalidInput(
                f"'{where}properties' is not valid JSON.", field=f"{where}properties"
            ) from None


def usage_key(tenant_prefix: bytes, month: str) -> bytes:
    return b"events\x00" + tenant_prefix + month.encode()


class IngestEvents:
    """Stores validated rows; insert_id repeats inside the dedup window are stored once."""

    __slots__ = ("dedup_window_us", "received_us", "rows", "tenant")

    def __init__(self, tenant: Tenant, rows: list[Row], received_us: int, dedup_window_us: int):
        self.tenant = tenant
        self.rows = rows
        self.received_us = received_us
        self.dedup_window_us = dedup_window_us

    def apply(self, ctx: WriteContext) -> IngestResult:
        # Column-at-a-time: transpose once, intern each distinct string once, extend the
        # builders with C-level calls. Only rows carrying an insert_id take a per-row path.
        prefix = self.tenant.prefix
        rows = self.rows
        if any(row[4] for row in rows):
            rows = self._first_sightings(ctx, rows)
        if any(row[5] for row in rows):
            _link_visitors(ctx, prefix, rows)
        stored = len(rows)
        if stored:
            ts, users, names, props, inserts, requests = zip(*rows, strict=True)
            txn, interner = ctx.txn, ctx.interner
            cols = ctx.columns(prefix, "events")
            watch = cohort_watch.watching(ctx, prefix)
            known = dictionary.size(txn, ctx.store, prefix, dictionary.USER) if watch.any else 0
            user_ids = {u: interner.intern(txn, prefix, dictionary.USER, u) for u in set(users)}
            event_ids = {e: interner.intern(txn, prefix, dictionary.EVENT, e) for e in set(names)}
            cols["ts"].extend(ts)
            cols["received"].extend([self.received_us] * stored)
            cols["user"].extend(map(user_ids.__getitem__, users))
            cols["event"].extend(map(event_ids.__getitem__, names))
            cols["props"].extend(props)
            cols["insert_id"].extend(inserts)
            cols["request_id"].extend(requests)
            ctx.count(usage_key(prefix, month_of(self.received_us)), stored)
            if watch.any:
                # Users who did a watched event, and users new to the tenant: a new user can
                # belong to cohorts that count absence (NOT, "at most", "exactly 0").
                watched = watch.events
                touched = [i for i in user_ids.values() if i >= known]
                if not watched.isdisjoint(event_ids):
                    pairs = zip(users, names, strict=True)
                    touched += [user_ids[u] for u, e in pairs if e in watched]
                cohort_watch.enqueue(ctx, prefix, touched)
        n = len(self.rows)
        return IngestResult(accepted=n, stored=stored, deduplicated=n - stored)

    def _first_sightings(self, ctx: WriteContext, rows: list[Row]) -> list[Row]:
        """Drop rows whose insert_id was seen within the window (or earlier in this batch);
        remember the others. The ids are read and written in key order, one cursor call
        each, which spares a B-tree descent per row."""
        txn, prefix, received = ctx.txn, self.tenant.prefix, self.received_us
        keys = [b"d" + prefix + row[4] if row[4] else None for row in rows]
        with txn.cursor(db=ctx.store.dedup) as cursor:
            seen = cursor.getmulti(sorted({key for key in keys if key is not None}))
            window = self.dedup_window_us
            recent = {key for key, at in seen if received - int.from_bytes(at, "little") < window}
            kept, fresh = [], set()
            for row, key in zip(rows, keys, strict=True):
                if key is not None:
                    if key in recent or key in fresh:
                        continue
                    fresh.add(key)
                kept.append(row)
            stamp = received.to_bytes(8, "little")
            cursor.putmulti([(key, stamp) for key in sorted(fresh)])
        return kept


class _DocVisitor(msgspec.Struct):
    visitorId: str


_doc_visitor = msgspec.json.Decoder(_DocVisitor)


def _link_visitors(ctx: WriteContext, prefix: bytes, rows: list[Row]) -> None:
    """An event that carries the request_id of a device identification links its user to that
    identification's visitor (the visitor's `linkedAccounts`)."""
    txn, store = ctx.txn, ctx.store
    for _, user_id, _, _, _, request_id in rows:
        if not request_id:
            continue
        raw = txn.get(records.doc_key(prefix, request_id.decode()), db=store.idents)
        if raw is None:
            continue
        visitor_id = _doc_visitor.decode(raw).visitorId
        key = records.visitor_key(prefix, visitor_id)
        raw_record = txn.get(key, db=store.visitors)
        if raw_record is None:
            continue
        record = records.decode_record(raw_record)
        if user_id not in record.linked and len(record.linked) < records.MAX_LINKED:
            record.linked.append(user_id)
            txn.put(key, records.encode_record(record), db=store.visitors)
