"""Stored records of device identification: visitor records, event summaries, and the keys of
their indexes.

visitors database: `V` visitor record and per-visitor event index, `X` exact-match index, `B`
band index, `I` address index, `F` population counts (population.py). idents database: `r`
event document, `t` time index.

Every identification dirties the pages it writes, and a durable commit costs about one disk write
per dirty page, so keys are laid out for locality: request ids start with their microsecond
timestamp (documents append at the end of the tree), and a visitor's event index sorts right
before its record (`V<visitor>\x00<ts><request>` then `V<visitor>\x01`), so the record and its
newest index entry usually share a page.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .matching import Features

MAX_LINKED = 100  # linked accounts remembered per visitor


class DeviceProfile(msgspec.Struct):
    platform: str | None
    browser: str | None
    gpu: str | None
    firstSeenAt: str
    lastSeenAt: str


class Storage(msgspec.Struct, array_like=True):
    """A browser storage that sent this visitor's id (storages.py)."""

    id: str
    first_us: int
    last_us: int


class VisitorRecord(msgspec.Struct):
    id: str
    first_seen_us: int
    last_seen_us: int
    total: int
    features: Features
    exact: bytes | None
    bands: list[bytes]
    devices: list[DeviceProfile]
    linked: list[str]
    ips: list[tuple[str, int]]
    storages: list[Storage] = msgspec.field(default_factory=list)
    # Other screens the device has shown, most recent first (linkage.remember_screen).
    screens: list[str] = msgspec.field(default_factory=list)


class MatchView(msgspec.Struct):
    """The fields of a visitor record that matching weighs: decoding only these skips the
    rest of every candidate's record."""

    id: str
    features: Features
    exact: bytes | None
    bands: list[bytes]
    ips: list[tuple[str, int]]
    screens: list[str] = msgspec.field(default_factory=list)


class EventSummary(msgspec.Struct, array_like=True):
    visitor: str
    verdict: str | None
    bot: bool
    vpn: bool
    confidence: float


_record_enc = msgspec.msgpack.Encoder()
_record_dec = msgspec.msgpack.Decoder(VisitorRecord)
_view_dec = msgspec.msgpack.Decoder(MatchView)
_summary_dec = msgspec.msgpack.Decoder(EventSummary)
_ipvis_dec = msgspec.msgpack.Decoder(list[tuple[str, int]])


def visitor_key(prefix: bytes, visitor_id: str) -> bytes:
    return b"V" + prefix + visitor_id.encode() + b"\x01"


def exact_index_key(prefix: bytes, key: bytes) -> bytes:
    return b"X" + prefix + key


def band_index_key(prefix: bytes, key: bytes) -> bytes:
    return b"B" + prefix + key


def ip_index_key(prefix: bytes, ip: str) -> bytes:
    return b"I" + prefix + ip.encode()


def doc_key(prefix: bytes, request_id: str) -> bytes:
    return b"r" + prefix + request_id.encode()


def time_key(prefix: bytes, ts: int, request_id: str) -> bytes:
    return b"t" + prefix + ts.to_bytes(8, "big") + request_id.encode()


def visitor_events_prefix(prefix: bytes, visitor_id: str) -> bytes:
    return b"V" + prefix + visitor_id.encode() + b"\x00"


def decode_record(raw: bytes) -> VisitorRecord:
    return _record_dec.decode(raw)


def decode_view(raw: bytes) -> MatchView:
    return _view_dec.decode(raw)


def decode_summary(raw: bytes) -> EventSummary:
    return _summary_dec.decode(raw)


def decode_ip_visitors(raw: bytes) -> list[tuple[str, int]]:
    return _ipvis_dec.decode(raw)


def ip_index_remove(txn: Any, db: Any, key: bytes, visitor_id: str) -> None:
    raw = txn.get(key, db=db)
    if raw is None:
        return
    seen = [(v, ts) for v, ts in _ipvis_dec.decode(raw) if v != visitor_id]
    if seen:
        txn.put(key, _record_enc.encode(seen), db=db)
    else:
        txn.delete(key, db=db)


def encode_record(value: Any) -> bytes:
    """msgpack for records and index lists."""
    return _record_enc.encode(value)
