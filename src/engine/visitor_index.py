"""The matching indexes of visitors and the population counts beside them, moved together.

Each visitor is listed under its current exact key (every stable feature with languages and
time zone) and its band keys (small groups of features, so that a drifting device still shares
most of them). Lists keep the most recent 32 visitors per key: look-alike devices share keys,
and matching needs to see that several visitors fit, not only one. The population counts
(`population.py`) say how many visitors hold each key, past that limit too.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import matching, population
from .matching import Features, Keys
from .population import Population
from .visitor_records import VisitorRecord, band_index_key, encode_record, exact_index_key

FANOUT = 32
_ids_dec = msgspec.msgpack.Decoder(list[str])


def holders(txn: Any, db: Any, key: bytes) -> list[str]:
    raw = txn.get(key, db=db)
    return _ids_dec.decode(raw) if raw is not None else []


def _add(txn: Any, db: Any, key: bytes, visitor_id: str) -> None:
    ids = holders(txn, db, key)
    if visitor_id in ids:
        return
    ids.append(visitor_id)
    txn.put(key, encode_record(ids[-FANOUT:]), db=db)


def _remove(txn: Any, db: Any, key: bytes, visitor_id: str) -> None:
    ids = holders(txn, db, key)
    if visitor_id not in ids:
        return
    ids.remove(visitor_id)
    if ids:
        txn.put(key, encode_record(ids), db=db)
    else:
        txn.delete(key, db=db)


def counted_keys(keys: Keys) -> list[tuple[bytes, bytes]]:
    """The (kind, digest) pairs a visitor with these keys is counted under."""
    counted = [(population.BAND, band) for band in keys.bands]
    for kind, value in (
        (population.EXACT, keys.exact),
        (population.MODEL, keys.model),
        (population.LANGUAGES, keys.languages),
        (population.TIMEZONE, keys.timezone),
    ):
        if value is not None:
            counted.append((kind, value))
    return counted


def _index_keys(prefix: bytes, exact: bytes | None, bands: list[bytes]) -> set[bytes]:
    keys = {band_index_key(prefix, band) for band in bands}
    if exact is not None:
        keys.add(exact_index_key(prefix, exact))
    return keys


def move(
    txn: Any,
    db: Any,
    prefix: bytes,
    record: VisitorRecord,
    features: Features,
    keys: Keys,
    *,
    new_visitor: bool,
) -> None:
    """List `record` under `keys` (of `features`) instead of its current ones, and count it
    there; the caller stores the record."""
    pop = Population(txn, db, prefix)
    exact, bands = keys.exact, keys.bands
    if new_visitor:
        pop.add_visitor(1)
        old_counted: list[tuple[bytes, bytes]] = []
        old_index: set[bytes] = set()
    elif record.exact == exact and record.bands == bands and record.features == features:
        return  # a returning device with unchanged features: its entries stand
    else:
        old_counted = counted_keys(matching.keys(record.features))
        old_index = _index_keys(prefix, record.exact, record.bands)
    pop.move(old_counted, counted_keys(keys))
    new_index = _index_keys(prefix, exact, bands)
    for key in old_index - new_index:
        _remove(txn, db, key, record.id)
    for key in new_index - old_index:
        _add(txn, db, key, record.id)
    record.exact, record.bands = exact, list(bands)


def forget(txn: Any, db: Any, prefix: bytes, record: VisitorRecord) -> None:
    """Take a deleted visitor out of every list and count."""
    pop = Population(txn, db, prefix)
    pop.add_visitor(-1)
    pop.move(counted_keys(matching.keys(record.features)), [])
    for key in _index_keys(prefix, record.exact, record.bands):
        _remove(txn, db, key, record.id)
