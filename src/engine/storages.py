"""Browser storages that hold a visitor id: telling a second device from the first.

The agent keeps the visitor id it is answered in the browser's storage, beside a storage id it
draws once for that storage. A visitor record remembers the storages that sent it and when
each was first and last seen.

One storage holds one visitor id at a time, and a device loses its storage (cleared site data,
a private window's end, Safari's seven-day cap) rather than keeping two. So when a storage
first seen after another one of the same visitor comes back while the older one is still in
use, the two are two browsers: a look-alike device that was answered this visitor's id by its
fingerprint, or a copied cookie. The older storage keeps the visitor; the younger one is
matched again without it. A private window or a cleared storage never comes back, so it never
contests anything.

Two browser profiles of one person on one machine are two persistent storages with one
fingerprint too: they are told apart like two devices (docs/identification.md).
"""

from __future__ import annotations

from .visitor_records import Storage, VisitorRecord

# Storages remembered per visitor: the oldest one and the most recently seen others.
MAX_STORAGES = 8


def _find(record: VisitorRecord, storage: str) -> Storage | None:
    return next((s for s in record.storages if s.id == storage), None)


def contested(record: VisitorRecord, storage: str | None) -> bool:
    """True when `storage` was first seen after another storage of this visitor that has been
    seen since: a second persistent browser using one visitor id."""
    if storage is None:
        return False
    mine = _find(record, storage)
    if mine is None:  # a storage this visitor has not recorded: nothing to compare with
        return False
    return any(
        other.id != storage and other.first_us < mine.first_us < other.last_us
        for other in record.storages
    )


def remember(record: VisitorRecord, storage: str | None, now: int) -> None:
    """Record that `storage` holds this visitor as of `now`."""
    if storage is None:
        return
    mine = _find(record, storage)
    if mine is not None:
        mine.last_us = now
        return
    record.storages.append(Storage(storage, now, now))
    if len(record.storages) > MAX_STORAGES:
        oldest = min(record.storages, key=lambda s: s.first_us)
        rest = sorted((s for s in record.storages if s is not oldest), key=lambda s: s.last_us)
        record.storages = [oldest, *rest[-(MAX_STORAGES - 1) :]]
