"""String interning: repeated strings (user ids, event names) become dense per-tenant integers.

Ids are assigned inside the writer's transaction, so every process sees the same mapping. An id,
once committed, never changes meaning, which is what makes a per-process cache safe.
"""

from __future__ import annotations

from collections.abc import Iterable

import lmdb

from .store import Store

USER = b"u"
EVENT = b"e"

_CACHE_LIMIT = 250_000


def _forward_key(prefix: bytes, kind: bytes, value: str) -> bytes:
    return b"s" + prefix + kind + b"\x00" + value.encode()


def _reverse_key(prefix: bytes, kind: bytes, ident: int) -> bytes:
    return b"i" + prefix + kind + ident.to_bytes(4, "big")


def _counter_key(prefix: bytes, kind: bytes) -> bytes:
    return b"dictseq\x00" + prefix + kind


class Interner:
    """Assigns ids inside one write transaction; the cache only learns committed ids."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[tuple[bytes, bytes], dict[str, int]] = {}
        self._pending: dict[tuple[bytes, bytes], dict[str, int]] = {}
        self._next: dict[tuple[bytes, bytes], int] = {}

    def intern(self, txn: lmdb.Transaction, prefix: bytes, kind: bytes, value: str) -> int:
        space = (prefix, kind)
        cache = self._cache.get(space)
        if cache is not None:
            found = cache.get(value)
            if found is not None:
                return found
        pending = self._pending.setdefault(space, {})
        found = pending.get(value)
        if found is not None:
            return found
        key = _forward_key(prefix, kind, value)
        raw = txn.get(key, db=self._store.dict)
        if raw is not None:
            ident = int.from_bytes(raw, "little")
        else:
            ident = self._allocate(txn, space)
            txn.put(key, ident.to_bytes(4, "little"), db=self._store.dict)
            txn.put(_reverse_key(prefix, kind, ident), value.encode(), db=self._store.dict)
        pending[value] = ident
        return ident

    def _allocate(self, txn: lmdb.Transaction, space: tuple[bytes, bytes]) -> int:
        ident = self._next.get(space)
        if ident is None:
            raw = txn.get(_counter_key(*space), db=self._store.meta)
            ident = int.from_bytes(raw, "little") if raw else 0
        self._next[space] = ident + 1
        return ident

    def forget(self, txn: lmdb.Transaction, prefix: bytes, kind: bytes, value: str) -> int | None:
        """Remove a string from the dictionary (deletion); returns the id it had.

        The id is not reused: rows still carrying it are hidden by tombstones until compaction.
        """
        key = _forward_key(prefix, kind, value)
        raw = txn.get(key, db=self._store.dict)
        if raw is None:
            return self._pending.get((prefix, kind), {}).pop(value, None)
        ident = int.from_bytes(raw, "little")
        txn.delete(key, db=self._store.dict)
        txn.delete(_reverse_key(prefix, kind, ident), db=self._store.dict)
        self._cache.get((prefix, kind), {}).pop(value, None)
        self._pending.get((prefix, kind), {}).pop(value, None)
        return ident

    def commit(self, txn: lmdb.Transaction) -> None:
        """Write the counters; call inside the transaction, before it commits."""
        for space, nxt in self._next.items():
            txn.put(_counter_key(*space), nxt.to_bytes(4, "little"), db=self._store.meta)

    def committed(self) -> None:
        for space, entries in self._pending.items():
            cache = self._cache.setdefault(space, {})
            if len(cache) + len(entries) > _CACHE_LIMIT:
                cache.clear()
            cache.update(entries)
        self._pending.clear()
        self._next.clear()

    def aborted(self) -> None:
        self._pending.clear()
        self._next.clear()


def lookup(
    txn: lmdb.Transaction, store: Store, prefix: bytes, kind: bytes, value: str
) -> int | None:
    raw = txn.get(_forward_key(prefix, kind, value), db=store.dict)
    return None if raw is None else int.from_bytes(raw, "little")


def strings(
    txn: lmdb.Transaction, store: Store, prefix: bytes, kind: bytes, ids: Iterable[int]
) -> dict[int, str]:
    """Reverse-map ids to strings (for the ids that still exist)."""
    out: dict[int, str] = {}
    for ident in ids:
        raw = txn.get(_reverse_key(prefix, kind, int(ident)), db=store.dict)
        if raw is not None:
            out[int(ident)] = bytes(raw).decode()
    return out


def containing(
    txn: lmdb.Transaction, store: Store, prefix: bytes, kind: bytes, part: str
) -> list[int]:
    """Ids of every string of this kind that contains `part` (a scan of the kind's strings).

    Tested on the UTF-8 bytes: one UTF-8 string contains another exactly when its bytes do.
    """
    head = _forward_key(prefix, kind, "")
    needle = part.encode()
    out = []
    with txn.cursor(db=store.dict) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                if needle in key[len(head) :]:
                    out.append(int.from_bytes(value, "little"))
    return out


def size(txn: lmdb.Transaction, store: Store, prefix: bytes, kind: bytes) -> int:
    """How many ids the kind has handed out: ids are 0 .. size - 1 (some may be forgotten)."""
    raw = txn.get(_counter_key(prefix, kind), db=store.meta)
    return int.from_bytes(raw, "little") if raw else 0
