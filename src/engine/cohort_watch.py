"""What ingestion reports to cohorts: the users whose membership a write may change.

Each tenant with cohorts has one watch record: the event names any of its cohorts counts, and
whether any tests traits. Ingestion checks it (cached per process, reloaded when the record
changes) and, only when a write stored a watched event or changed traits, appends the users
concerned to the tenant's queue in the same transaction. cohort_store drains the queue.
"""

from __future__ import annotations

from collections.abc import Iterable

import lmdb
import msgspec
import numpy as np

from .store import Store
from .writer import WriteContext


class Watch(msgspec.Struct, frozen=True):
    events: frozenset[str] = frozenset()
    traits: bool = False
    any: bool = True  # the tenant has cohorts (new users can join those that count absence)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Watch)
_NOTHING = Watch(any=False)


def watch_key(prefix: bytes) -> bytes:
    return b"w" + prefix


def queue_head(prefix: bytes) -> bytes:
    return b"t" + prefix


def store_watch(txn: lmdb.Transaction, store: Store, prefix: bytes, watch: Watch) -> None:
    txn.put(watch_key(prefix), _enc.encode(watch), db=store.cohorts)


class WatchCache:
    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[bytes, Watch]] = {}

    def get(self, txn: lmdb.Transaction, store: Store, prefix: bytes) -> Watch:
        raw = txn.get(watch_key(prefix), db=store.cohorts)
        if raw is None:
            return _NOTHING
        raw = bytes(raw)
        cached = self._cache.get(prefix)
        if cached is not None and cached[0] == raw:
            return cached[1]
        watch = _dec.decode(raw)
        self._cache[prefix] = (raw, watch)
        return watch


def watching(ctx: WriteContext, prefix: bytes) -> Watch:
    return ctx.caches.setdefault("cohort-watch", WatchCache()).get(ctx.txn, ctx.store, prefix)


def enqueue(ctx: WriteContext, prefix: bytes, users: Iterable[int]) -> None:
    """Queue users for re-evaluation (see cohort_store.refresh)."""
    chosen = np.unique(np.fromiter(users, np.uint32))
    if not len(chosen):
        return
    key = queue_head(prefix) + ctx.now_us.to_bytes(8, "big") + np.random.bytes(4)
    ctx.txn.put(key, chosen.tobytes(), db=ctx.store.cohorts)
    ctx.written.add((prefix, "cohorts"))
