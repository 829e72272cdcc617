"""How common each piece of device evidence is in a workspace: visitors per value.

Matching weighs a match by how many other devices would match as well: a fingerprint held by
500 visitors says almost nothing about which of them is back, one held by none says a lot. The
counts are kept in the visitors database beside the indexes, in the same transactions that move
a visitor's keys, so they are exact for the visitors stored.

Keys: `F<prefix>#` the number of visitors; `F<prefix><kind><digest>` the visitors whose current
features give that key (kinds below). Values are 4-byte little-endian counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EXACT = b"x"  # every stable feature with languages and time zone
MODEL = b"m"  # the stable features alone: how common this kind of device is
LANGUAGES = b"l"
TIMEZONE = b"z"
BAND = b"b"

_TOTAL = b"#"


def _key(prefix: bytes, kind: bytes, digest: bytes) -> bytes:
    return b"F" + prefix + kind + digest


def _read(txn: Any, db: Any, key: bytes) -> int:
    raw = txn.get(key, db=db)
    return int.from_bytes(raw, "little") if raw is not None else 0


def _add(txn: Any, db: Any, key: bytes, delta: int) -> None:
    value = _read(txn, db, key) + delta
    if value > 0:
        txn.put(key, value.to_bytes(4, "little"), db=db)
    else:
        txn.delete(key, db=db)


class Population:
    """Counts of one workspace, read and moved inside one transaction."""

    def __init__(self, txn: Any, db: Any, prefix: bytes) -> None:
        self._txn, self._db, self._prefix = txn, db, prefix

    def visitors(self) -> int:
        return _read(self._txn, self._db, b"F" + self._prefix + _TOTAL)

    def count(self, kind: bytes, digest: bytes) -> int:
        return _read(self._txn, self._db, _key(self._prefix, kind, digest))

    def add_visitor(self, delta: int) -> None:
        _add(self._txn, self._db, b"F" + self._prefix + _TOTAL, delta)

    def move(self, old: Iterable[tuple[bytes, bytes]], new: Iterable[tuple[bytes, bytes]]) -> None:
        """A visitor's keys went from `old` to `new` ((kind, digest) pairs): counts follow."""
        before, after = set(old), set(new)
        for kind, digest in before - after:
            _add(self._txn, self._db, _key(self._prefix, kind, digest), -1)
        for kind, digest in after - before:
            _add(self._txn, self._db, _key(self._prefix, kind, digest), 1)
