"""Stored cohorts: records, membership snapshots, and keeping membership current.

A cohort's membership is a roaring bitmap of interned user ids, stored as numbered snapshots.
Member pages name the snapshot they read (the cursor carries its number), so paging stays
consistent while membership changes; snapshots are kept for `SNAPSHOT_KEEP_US` after a newer
one replaces them.

Membership stays current two ways (docs/cohorts.md):
- ingestion (events, traits) that can change a cohort appends the users it touched, in its own
  transaction, to a per-tenant queue (`touch`); the compactor's process drains the queue about
  every second and re-evaluates each cohort for those users only (`refresh_touched`);
- conditions with a sliding window (`last_days`) also change with time alone: such cohorts are
  evaluated in full again at most every `refresh_us` (`refresh_due`); `computedAt` is the time
  of the last full evaluation, `updatedAt` of the last change of any kind.
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Annotated

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from . import cohort_watch, cohorts, dictionary
from .errors import InvalidInput, NotFound
from .store import Store, prefixed
from .tenant import Tenant
from .timeutil import iso, now_us
from .writer import WriteContext, Writer

SNAPSHOT_KEEP_US = 3600 * 1_000_000
MAX_PAGE = 500
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"  # what page_members issues: urlsafe base64
_ALPHABET = string.ascii_lowercase + string.digits


class CohortIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    definition: cohorts.Condition


class CohortRecord(msgspec.Struct):
    id: str
    name: str
    definition: cohorts.Condition
    created_us: int
    computed_us: int  # last full evaluation
    updated_us: int  # last change of membership, full or incremental
    snapshot: int  # number of the current membership snapshot
    size: int


class CohortOut(msgspec.Struct):
    id: str
    name: str
    definition: cohorts.Condition
    size: int
    computedAt: str
    updatedAt: str
    createdAt: str


class CohortPage(msgspec.Struct):
    data: list[CohortOut]
    total: int


class CohortDeleted(msgspec.Struct):
    deleted: bool
    id: str


class MembersPage(msgspec.Struct):
    cohortId: str
    userIds: list[str]
    hasMore: bool
    nextCursor: str | None
    size: int  # members in the snapshot this page reads
    snapshotAt: str


_record_enc = msgspec.msgpack.Encoder()
_record_dec = msgspec.msgpack.Decoder(CohortRecord)
_decoder = msgspec.json.Decoder(CohortIn)
_cursor_dec = msgspec.msgpack.Decoder(tuple[int, int])


def decode_request(body: bytes) -> CohortIn:
    from .codec import decode

    request = decode(_decoder, body)
    cohorts.validate_definition(request.definition)
    return request


def _key(prefix: bytes, cohort_id: str) -> bytes:
    return b"c" + prefix + cohort_id.encode()


def _snapshot_key(prefix: bytes, cohort_id: str, number: int) -> bytes:
    return b"m" + prefix + cohort_id.encode() + b"\x00" + number.to_bytes(8, "big")


def out(record: CohortRecord) -> CohortOut:
    return CohortOut(
        record.id, record.name, record.definition, record.size, iso(record.computed_us),
        iso(record.updated_us), iso(record.created_us),
    )  # fmt: skip


def records(txn: lmdb.Transaction, store: Store, prefix: bytes) -> list[CohortRecord]:
    found = [_record_dec.decode(v) for _, v in prefixed(txn, store.cohorts, b"c" + prefix)]
    return sorted(found, key=lambda r: (r.created_us, r.id))


def get(txn: lmdb.Transaction, store: Store, prefix: bytes, cohort_id: str) -> CohortRecord:
    raw = txn.get(_key(prefix, cohort_id), db=store.cohorts)
    if raw is None:
        raise NotFound(f"No cohort {cohort_id}.", field="cohort_id")
    return _record_dec.decode(raw)


def members(txn: lmdb.Transaction, store: Store, prefix: bytes, record: CohortRecord) -> BitMap:
    return _snapshot(txn, store, prefix, record.id, record.snapshot) or BitMap()


def _snapshot(
    txn: lmdb.Transaction, store: Store, prefix: bytes, cohort_id: str, number: int
) -> BitMap | None:
    raw = txn.get(_snapshot_key(prefix, cohort_id, number), db=store.cohorts)
    return None if raw is None else BitMap.deserialize(raw)


def _store_members(
    ctx: WriteContext, prefix: bytes, record: CohortRecord, bitmap: BitMap, full: bool
) -> None:
    """A new snapshot; snapshots replaced more than SNAPSHOT_KEEP_US ago are dropped."""
    txn, db, now = ctx.txn, ctx.store.cohorts, ctx.now_us
    number = record.snapshot + 1
    txn.put(_snapshot_key(prefix, record.id, number), bitmap.serialize(), db=db)
    # The snapshot being replaced learns when: a cursor on it stays valid until then + keep.
    if record.snapshot:
        txn.put(_replaced_key(prefix, record.id, record.snapshot), now.to_bytes(8, "big"), db=db)
    head = b"m" + prefix + record.id.encode() + b"\x00"
    stale = []
    for key, _ in prefixed(txn, db, head, values=False):
        n = int.from_bytes(key[-8:], "big")
        replaced = txn.get(_replaced_key(prefix, record.id, n), db=db)
        age = now - int.from_bytes(replaced, "big") if replaced else 0
        if n < number and replaced and age > SNAPSHOT_KEEP_US:
            stale.append((key, n))
    for key, n in stale:
        txn.delete(key, db=db)
        txn.delete(_replaced_key(prefix, record.id, n), db=db)
    record.snapshot, record.size, record.updated_us = number, len(bitmap), now
    if full:
        record.computed_us = now
    txn.put(_key(prefix, record.id), _record_enc.encode(record), db=db)


def _replaced_key(prefix: bytes, cohort_id: str, number: int) -> bytes:
    return b"r" + prefix + cohort_id.encode() + b"\x00" + number.to_bytes(8, "big")


def _rewatch(txn: lmdb.Transaction, store: Store, prefix: bytes) -> None:
    """Recompute what ingestion must report for the tenant (cohort_watch)."""
    names: set[str] = set()
    traits = False
    for record in records(txn, store, prefix):
        n, t = cohorts.watched(record.definition)
        names |= n
        traits = traits or t
    cohort_watch.store_watch(txn, store, prefix, cohort_watch.Watch(frozenset(names), traits))


class CreateCohort:
    """Stores the cohort with its first full evaluation, done in a snapshot before the write
    (`bitmap`, `evaluated_us`); users touched since are picked up by the next refresh."""

    def __init__(self, tenant: Tenant, request: CohortIn, bitmap: BitMap, evaluated_us: int):
        self.tenant, self.request, self.bitmap, self.evaluated_us = (
            tenant, request, bitmap, evaluated_us
        )  # fmt: skip

    def apply(self, ctx: WriteContext) -> CohortOut:
        prefix = self.tenant.prefix
        if any(r.name == self.request.name for r in records(ctx.txn, ctx.store, prefix)):
            raise InvalidInput(f"A cohort named {self.request.name!r} exists.", field="name")
        cohort_id = "coh_" + "".join(secrets.choice(_ALPHABET) for _ in range(12))
        record = CohortRecord(
            cohort_id, self.request.name, self.request.definition, ctx.now_us,
            self.evaluated_us, ctx.now_us, 0, 0,
        )  # fmt: skip
        _store_members(ctx, prefix, record, self.bitmap, full=True)
        record.computed_us = self.evaluated_us
        ctx.txn.put(_key(prefix, cohort_id), _record_enc.encode(record), db=ctx.store.cohorts)
        _rewatch(ctx.txn, ctx.store, prefix)
        return out(record)


def page_members(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    cohort_id: str,
    limit: int,
    cursor: str | None,
) -> MembersPage:
    prefix = tenant.prefix
    record = get(txn, store, prefix, cohort_id)
    number, after = record.snapshot, -1
    if cursor:
        try:
            number, after = _cursor_dec.decode(base64.urlsafe_b64decode(cursor.encode()))
        except (ValueError, msgspec.DecodeError):
            message = "The cursor is not one this server issued."
            raise InvalidInput(message, field="cursor") from None
    bitmap = _snapshot(txn, store, prefix, cohort_id, number)
    if bitmap is None:
        raise InvalidInput("The cursor's snapshot has expired; start again.", field="cursor")
    ids = np.asarray(bitmap.to_array(), np.int64)
    start = int(np.searchsorted(ids, after, side="right"))
    chosen = ids[start : start + limit].tolist()
    names = dictionary.strings(txn, store, prefix, dictionary.USER, chosen)
    has_more = start + limit < len(ids)
    next_cursor = None
    if has_more:
        raw = msgspec.msgpack.encode((number, chosen[-1]))
        next_cursor = base64.urlsafe_b64encode(raw).decode()
    replaced = txn.get(_replaced_key(prefix, cohort_id, number), db=store.cohorts)
    at = record.updated_us if number == record.snapshot else int.from_bytes(replaced or b"", "big")
    return MembersPage(
        cohort_id, [names[i] for i in chosen if i in names], has_more, next_cursor, len(ids),
        iso(at),
    )  # fmt: skip


# -- keeping membership current ------------------------------------------------------------


def touched(txn: lmdb.Transaction, store: Store, prefix: bytes) -> tuple[list[bytes], BitMap]:
    head = cohort_watch.queue_head(prefix)
    keys, users = [], BitMap()
    for key, value in prefixed(txn, store.cohorts, head):
        keys.append(key)
        users.update(np.frombuffer(value, np.uint32).tolist())
    return keys, users


class ApplyRefresh:
    """Store memberships evaluated in a snapshot and drop the touched-user entries consumed."""

    def __init__(
        self, prefix: bytes, updates: dict[str, tuple[BitMap, BitMap | None]], consumed: list[bytes]
    ) -> None:
        # cohort id -> (members among the evaluated users, the evaluated users or None = all)
        self.prefix, self.updates, self.consumed = prefix, updates, consumed

    def apply(self, ctx: WriteContext) -> int:
        for key in self.consumed:
            ctx.txn.delete(key, db=ctx.store.cohorts)
        changed = 0
        for cohort_id, (found, scope) in self.updates.items():
            raw = ctx.txn.get(_key(self.prefix, cohort_id), db=ctx.store.cohorts)
            if raw is None:
                continue  # deleted meanwhile
            record = _record_dec.decode(raw)
            current = members(ctx.txn, ctx.store, self.prefix, record)
            new = found if scope is None else (current - scope) | found
            if scope is None or new != current:
                _store_members(ctx, self.prefix, record, new, full=scope is None)
                changed += 1
        return changed


def refresh(store: Store, writer: Writer, prefix: bytes, full_every_us: int) -> int:
    """One round for a tenant: re-evaluate every cohort for the users touched since the last
    round, and in full those with a sliding window last evaluated `full_every_us` ago or more.
    Evaluation reads a snapshot; only the result goes through the writer."""
    tenant = Tenant.from_prefix(prefix)
    updates: dict[str, tuple[BitMap, BitMap | None]] = {}
    with store.read() as txn:
        keys, users = touched(txn, store, prefix)
        now = now_us()
        for record in records(txn, store, prefix):
            definition = record.definition
            if cohorts.slides(definition) and now - record.computed_us >= full_every_us:
                updates[record.id] = (cohorts.evaluate(txn, store, tenant, definition, now), None)
            elif users:
                found = cohorts.evaluate(txn, store, tenant, definition, now, users)
                updates[record.id] = (found, users)
    if not updates and not keys:
        return 0
    return writer.run(ApplyRefresh(prefix, updates, keys))


def tenants_with_cohorts(store: Store) -> list[bytes]:
    prefixes = []
    with store.read() as txn, txn.cursor(db=store.cohorts) as cur:
        if cur.set_range(b"w"):
            for key in cur.iternext(values=False):
                if not key.startswith(b"w"):
                    break
                prefixes.append(bytes(key[1:]))
    return prefixes


class DeleteCohort:
    def __init__(self, tenant: Tenant, cohort_id: str) -> None:
        self.tenant, self.cohort_id = tenant, cohort_id

    def apply(self, ctx: WriteContext) -> CohortDeleted:
        prefix, txn, db = self.tenant.prefix, ctx.txn, ctx.store.cohorts
        get(txn, ctx.store, prefix, self.cohort_id)  # NotFound
        txn.delete(_key(prefix, self.cohort_id), db=db)
        for head in (b"m", b"r"):
            start = head + prefix + self.cohort_id.encode() + b"\x00"
            for key, _ in list(prefixed(txn, db, start, values=False)):
                txn.delete(key, db=db)
        _rewatch(txn, ctx.store, prefix)
        return CohortDeleted(True, self.cohort_id)
