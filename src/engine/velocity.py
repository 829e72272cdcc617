"""Velocity features of an identification: how many addresses a visitor came from, and how
many visitors an address served, within the last hour and day (docs/scores.md).

A visitor record keeps the visitor's addresses; an index entry per address keeps the visitors
seen there. Both lists are bounded, so the counts saturate at their length (64) rather than
growing without limit for a busy address.
"""

from __future__ import annotations

import lmdb

from .scores import Velocity
from .visitor_records import VisitorRecord, decode_ip_visitors, encode_record, ip_index_key

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
MAX_IPS = 64
MAX_IP_VISITORS = 64
# A visitor seen on an address within this long is not rewritten into the address's entry.
IP_REFRESH_US = 60_000_000
_CACHED_ADDRESSES = 1024


def ip_visitors(
    stored: list[tuple[str, int]], visitor_id: str, now: int
) -> tuple[list[tuple[str, int]], int | None, int]:
    """An address's visitors after this visit: the entries of the last day with this visitor
    moved to the end at `now` (at most MAX_IP_VISITORS, the oldest dropped), when this visitor
    was last seen here (None if not among the entries), and how many of the kept entries fall
    within the hour. An address shared by many devices (an office, a carrier's NAT) carries the
    full list on every identification, so the passes over it are comprehensions."""
    day_cut, hour_cut = now - DAY_US, now - HOUR_US
    seen = [entry for entry in stored if entry[1] > day_cut and entry[0] != visitor_id]
    last = None
    if len(seen) != len(stored):  # this visitor, or an entry past the day, was dropped
        last = next((ts for v, ts in reversed(stored) if v == visitor_id), None)
    seen.append((visitor_id, now))
    if len(seen) > MAX_IP_VISITORS:
        seen = seen[-MAX_IP_VISITORS:]
    return seen, last, len([1 for entry in seen if entry[1] > hour_cut])


IpCache = dict[bytes, tuple[bytes, list[tuple[str, int]]]]


def _entries(
    txn: lmdb.Transaction, db: lmdb._Database, key: bytes, cache: IpCache
) -> list[tuple[str, int]]:
    """An address's stored entries, decoded at most once per stored value (see velocity_of)."""
    raw = txn.get(key, db=db)
    if raw is None:
        return []
    cached = cache.get(key)
    if cached is not None and cached[0] == raw:
        return cached[1]
    return decode_ip_visitors(raw)


def address_visitors(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    prefix: bytes,
    address: str,
    now: int,
    cache: IpCache,
) -> int:
    """Visitors seen on this address in the last day (up to MAX_IP_VISITORS)."""
    stored = _entries(txn, db, ip_index_key(prefix, address), cache)
    day_cut = now - DAY_US
    return sum(1 for _, ts in stored if ts > day_cut)


def velocity_of(
    txn: lmdb.Transaction,
    db: lmdb._Database,
    prefix: bytes,
    record: VisitorRecord,
    address: str,
    now: int,
    cache: IpCache,
) -> Velocity:
    """Record this visit on the visitor (its addresses) and on the address (its visitors), and
    count both. The caller stores the visitor record; the address entry is written here.

    `cache` keeps the entries this writer last stored per address beside their encoding: a busy
    address is read back by the next identification, and comparing the stored bytes costs far
    less than decoding them again. A value written by another process, or rolled back, differs
    from the cached bytes and is decoded."""
    ips = [(ip, ts) for ip, ts in record.ips if now - ts < DAY_US and ip != address]
    ips.append((address, now))
    record.ips = ips[-MAX_IPS:]
    key = ip_index_key(prefix, address)
    stored = _entries(txn, db, key, cache)
    seen, last, hour = ip_visitors(stored, record.id, now)
    # A visitor seen on this address within the minute changes no count that matters
    # (windows are an hour and a day): skip rewriting the entry, which dirties pages.
    if last is None or now - last >= IP_REFRESH_US or len(stored) != len(seen):
        encoded = encode_record(seen)
        txn.put(key, encoded, db=db)
        if len(cache) >= _CACHED_ADDRESSES:
            cache.clear()
        cache[key] = (encoded, seen)
    return Velocity(
        distinctIps1h=sum(1 for _, ts in record.ips if now - ts < HOUR_US),
        distinctIps24h=len(record.ips),
        visitorsPerIp1h=hour,
        visitorsPerIp24h=len(seen),
        accountsPerVisitor=len(record.linked),
    )
