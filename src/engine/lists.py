"""Lists: named sets of visitor ids, IP addresses or emails that rules refer to.

Records (`lists` database): `L` list record, `N` name index, `E` entry -> expiry (microseconds,
0 for never). An entry whose expiry has passed is not a member from that instant; expired
entries are removed by later writes to the list, and `entryCount` counts live entries.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

import lmdb
import msgspec

from . import publish
from .errors import InvalidInput, NotFound
from .store import Store
from .tenant import Tenant
from .timeutil import iso
from .writer import WriteContext

log = logging.getLogger("signalpost.rules")
ListType = Literal["visitor", "ip", "email"]
MAX_ENTRIES_PER_CALL = 1000
VISITOR_ID_LENGTH = (4, 64)  # shortest and longest visitor id entry, pv_ included
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
EMAIL_MAX = 254
_EMAIL = re.compile(EMAIL_PATTERN)


class ListIn(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    type: ListType
    description: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    ttl: Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)] | None = None


class EntriesIn(msgspec.Struct, kw_only=True):
    add: list[str] = []
    remove: list[str] = []


class ListRecord(msgspec.Struct):
    id: str
    name: str
    type: ListType
    description: str | None
    ttl: int | None
    created_us: int
    updated_us: int
    entry_count: int


class ListOut(msgspec.Struct):
    id: str
    name: str
    type: ListType
    description: str | None
    entryCount: int
    ttl: int | None
    createdAt: str
    updatedAt: str


class ListPage(msgspec.Struct):
    data: list[ListOut]
    total: int


class EntriesResult(msgspec.Struct):
    listId: str
    added: int
    removed: int
    entryCount: int


class ListDeleted(msgspec.Struct):
    deleted: bool
    listId: str


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(ListRecord)


def _list_key(prefix: bytes, list_id: str) -> bytes:
    return b"L" + prefix + list_id.encode()


def _name_key(prefix: bytes, name: str) -> bytes:
    return b"N" + prefix + name.encode()


def _entry_prefix(prefix: bytes, list_id: str) -> bytes:
    return b"E" + prefix + list_id.encode() + b"\x00"


def out(record: ListRecord) -> ListOut:
    return ListOut(
        record.id, record.name, record.type, record.description, record.entry_count,
        record.ttl, iso(record.created_us), iso(record.updated_us),
    )  # fmt: skip


def normalise(kind: str, entry: str, where: str) -> str:
    """The canonical form of an entry, or InvalidInput naming it."""
    if kind == "visitor":
        if not (
            entry.startswith("pv_") and VISITOR_ID_LENGTH[0] <= len(entry) <= VISITOR_ID_LENGTH[1]
        ):
            raise InvalidInput(f"'{where}' is not a visitor id (pv_…).", field=where)
        return entry
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(entry.strip()))
        except ValueError:
            raise InvalidInput(f"'{where}' is not an IP address.", field=where) from None
    if not _EMAIL.match(entry) or len(entry) > EMAIL_MAX:
        raise InvalidInput(f"'{where}' is not an email address.", field=where)
    return entry.strip().lower()


class CreateList:
    def __init__(self, tenant: Tenant, request: ListIn) -> None:
        self.tenant, self.request = tenant, request

    def apply(self, ctx: WriteContext) -> ListOut:
        prefix, txn, db, req = self.tenant.prefix, ctx.txn, ctx.store.lists, self.request
        if txn.get(_name_key(prefix, req.name), db=db) is not None:
            raise InvalidInput(f"A list named {req.name!r} exists already.", field="name")
        record = ListRecord(
            f"lst_{secrets.token_hex(6)}", req.name, req.type, req.description, req.ttl,
            ctx.now_us, ctx.now_us, 0,
        )  # fmt: skip
        txn.put(_list_key(prefix, record.id), _enc.encode(record), db=db)
        txn.put(_name_key(prefix, record.name), record.id.encode(), db=db)
        return out(record)


class PatchEntries:
    """Add and remove entries atomically: one invalid entry and nothing changes."""

    def __init__(self, tenant: Tenant, list_id: str, request: EntriesIn) -> None:
        self.tenant, self.list_id, self.request = tenant, list_id, request

    def apply(self, ctx: WriteContext) -> EntriesResult:
        prefix, txn, db = self.tenant.prefix, ctx.txn, ctx.store.lists
        record = _load(txn, ctx.store, prefix, self.list_id)
        adds = [normalise(record.type, e, f"add[{i}]") for i, e in enumerate(self.request.add)]
        removes = [
            normalise(record.type, e, f"remove[{i}]") for i, e in enumerate(self.request.remove)
        ]
        now = ctx.now_us
        head = _entry_prefix(prefix, record.id)
        expiry = (now + record.ttl * 1_000_000) if record.ttl else 0
        added = removed = 0
        for entry in dict.fromkeys(adds):
            key = head + entry.encode()
            if not _live(txn.get(key, db=db), now):
                added += 1
            txn.put(key, expiry.to_bytes(8, "little"), db=db)
        for entry in dict.fromkeys(removes):
            key = head + entry.encode()
            if _live(txn.get(key, db=db), now):
                removed += 1
            txn.delete(key, db=db)
        record.entry_count = _count_live(txn, ctx.store, head, now)
        record.updated_us = now
        txn.put(_list_key(prefix, record.id), _enc.encode(record), db=db)
        publish.on_list_update(
            ctx, self.tenant, record, list(dict.fromkeys(adds)), list(dict.fromkeys(removes)), "api"
        )
        return EntriesResult(record.id, added, removed, record.entry_count)


class DeleteList:
    def __init__(self, tenant: Tenant, list_id: str) -> None:
        self.tenant, self.list_id = tenant, list_id

    def apply(self, ctx: WriteContext) -> ListDeleted:
        prefix, txn, db = self.tenant.prefix, ctx.txn, ctx.store.lists
        record = _load(txn, ctx.store, prefix, self.list_id)
        head = _entry_prefix(prefix, record.id)
        for key in _keys(txn, ctx.store, head):
            txn.delete(key, db=db)
        txn.delete(_name_key(prefix, record.name), db=db)
        txn.delete(_list_key(prefix, record.id), db=db)
        return ListDeleted(True, record.id)


def _live(raw: bytes | None, now: int) -> bool:
    if raw is None:
        return False
    expiry = int.from_bytes(raw, "little")
    return expiry == 0 or expiry > now


def _keys(txn: lmdb.Transaction, store: Store, head: bytes) -> list[bytes]:
    out_keys = []
    with txn.cursor(db=store.lists) as cur:
        if cur.set_range(head):
            for key in cur.iternext(values=False):
                if not key.startswith(head):
                    break
                out_keys.append(bytes(key))
    return out_keys


def _count_live(txn: lmdb.Transaction, store: Store, head: bytes, now: int) -> int:
    count = 0
    with txn.cursor(db=store.lists) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                count += _live(value, now)
    return count


def _load(txn: lmdb.Transaction, store: Store, prefix: bytes, list_id: str) -> ListRecord:
    raw = txn.get(_list_key(prefix, list_id), db=store.lists)
    if raw is None:
        raise NotFound(f"No list {list_id}.", field="listId")
    return _dec.decode(raw)


def all_lists(txn: lmdb.Transaction, store: Store, tenant: Tenant) -> list[ListRecord]:
    head = b"L" + tenant.prefix
    records = []
    with txn.cursor(db=store.lists) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                records.append(_dec.decode(value))
    return sorted(records, key=lambda r: r.created_us)


def memberships(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, kind: str, value: str, now: int
) -> list[str]:
    """Names of the lists of this type that hold the value now."""
    names = []
    for record in all_lists(txn, store, tenant):
        if record.type == kind:
            raw = txn.get(_entry_prefix(tenant.prefix, record.id) + value.encode(), db=store.lists)
            if _live(raw, now):
                names.append(record.name)
    return names


def live_entries(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, name: str, now: int
) -> tuple[ListType, list[str]] | None:
    """The type and the entries that are members at `now` of the list named `name`; None when
    no list has that name (it was deleted): rules then see it as empty."""
    raw_id = txn.get(_name_key(tenant.prefix, name), db=store.lists)
    if raw_id is None:
        return None
    record = _load(txn, store, tenant.prefix, bytes(raw_id).decode())
    head = _entry_prefix(tenant.prefix, record.id)
    entries = []
    with txn.cursor(db=store.lists) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                if _live(value, now):
                    entries.append(bytes(key[len(head) :]).decode())
    return record.type, entries


def forget_visitor(ctx: WriteContext, tenant: Tenant, visitor_id: str) -> None:
    """Remove a visitor from every visitor list (GDPR deletion)."""
    txn, db = ctx.txn, ctx.store.lists
    for record in all_lists(txn, ctx.store, tenant):
        if record.type != "visitor":
            continue
        key = _entry_prefix(tenant.prefix, record.id) + visitor_id.encode()
        if txn.get(key, db=db) is not None:
            txn.delete(key, db=db)
            record.entry_count = _count_live(
                txn, ctx.store, _entry_prefix(tenant.prefix, record.id), ctx.now_us
            )
            txn.put(_list_key(tenant.prefix, record.id), _enc.encode(record), db=db)


class Membership(Mapping[str, "_Members"]):
    """Lists as rule conditions see them: name -> a container answering `in` from the store."""

    def __init__(self, txn: lmdb.Transaction, store: Store, tenant: Tenant, now: int) -> None:
        self._txn, self._store, self._tenant, self._now = txn, store, tenant, now
        self._loaded: dict[str, Any] | None = None
        self._answers: dict[bytes, bool] = {}  # entry key -> member, for rules sharing a list

    @property
    def _records(self) -> dict[str, Any]:
        # Read on the first list reference: most identifications never reach one.
        if self._loaded is None:
            self._loaded = {r.name: r for r in all_lists(self._txn, self._store, self._tenant)}
        return self._loaded

    def __getitem__(self, name: str) -> _Members:
        record = self._records[name]
        return _Members(self, _entry_prefix(self._tenant.prefix, record.id), record.type)

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


class _Members:
    __slots__ = ("_head", "_kind", "_owner")

    def __init__(self, owner: Membership, head: bytes, kind: str) -> None:
        self._owner, self._head, self._kind = owner, head, kind

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if self._kind == "email":
            value = value.strip().lower()
        o = self._owner
        key = self._head + value.encode()
        found = o._answers.get(key)
        if found is None:
            found = o._answers[key] = _live(o._txn.get(key, db=o._store.lists), o._now)
        return found


def apply_side_effects(ctx: WriteContext, tenant: Tenant, effects: list, visitor_id: str) -> None:
    """addToList / removeFromList of the matched visitor, in the identification's transaction.
    `log` writes a structured log line; webhook and Slack side effects are enqueued by
    `publish.on_identification`."""
    txn, db = ctx.txn, ctx.store.lists
    names = {r.name: r for r in all_lists(txn, ctx.store, tenant)}
    for effect in effects:
        record = names.get(getattr(effect, "list", None) or "")
        if effect.type == "log":
            log.info("rule side effect", extra={"visitorId": visitor_id})
        if record is None or record.type != "visitor":
            continue
        key = _entry_prefix(tenant.prefix, record.id) + visitor_id.encode()
        if effect.type == "addToList":
            expiry = (ctx.now_us + record.ttl * 1_000_000) if record.ttl else 0
            txn.put(key, expiry.to_bytes(8, "little"), db=db)
        elif effect.type == "removeFromList":
            txn.delete(key, db=db)
        else:
            continue
        record.entry_count = _count_live(
            txn, ctx.store, _entry_prefix(tenant.prefix, record.id), ctx.now_us
        )
        record.updated_us = ctx.now_us
        txn.put(_list_key(tenant.prefix, record.id), _enc.encode(record), db=db)
        change = [visitor_id]
        adding = effect.type == "addToList"
        publish.on_list_update(
            ctx, tenant, record, change if adding else [], [] if adding else change, "rule"
        )
