"""The rows of a backtest window, read from the stored segments, coded for the rule kernel.

Every rule field has a source column in the `identifications` table (`SOURCES`). A backtest reads
only the columns its rule uses, straight from the segments with numpy, and turns each into one
float64 row of the kernel's matrix (NaN where the event had no value):

- flags and numbers become their value; interned strings stay their dictionary codes, so the
  rule's constants and list entries are looked up in the dictionary instead of decoding rows;
- strings stored as bytes (`ip.address`, `linkedId`) are not interned: each leaf on them gets a
  row of its own holding the leaf's test (1.0 or 0.0), computed by a numba kernel over the
  stored bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from . import dictionary, lists, pending_rows, rule_codes, rule_fields
from .columns import VarColumn
from .identification import (
    BROWSER_KIND,
    CITY_KIND,
    COUNTRY_KIND,
    DEVICE_TYPE_KIND,
    EVENT_TYPE_KIND,
    OS_KIND,
    PLATFORM_KIND,
    SIGNAL_BITS,
    VISITOR_KIND,
)
from .rule_program import LeafCode, Program, code_leaf
from .scan import overlapping
from .segments import NO_VALUE, read_columns, read_tombstones
from .store import Store
from .tenant import Tenant

TABLE = "identifications"
# `in` and `not_in` with more codes than this are answered by a table indexed by code.
LOOKUP_MIN = 16
How = Literal["bit", "number", "rounded", "nonzero", "flag", "interned", "bytes"]


class Source(msgspec.Struct, frozen=True):
    column: str
    how: How
    bit: int = 0  # for "bit": the flag in the `signals` column
    kind: bytes = b""  # for "interned": the dictionary kind
    empty_is_missing: bool = False  # the column stores the code of "" for no value


def _bit(name: str) -> Source:
    return Source("signals", "bit", bit=SIGNAL_BITS[name])


SOURCES: dict[str, Source] = {
    "visitorId": Source("visitor", "interned", kind=VISITOR_KIND),
    # f4 columns hold values the engine rounded to 3 or 4 decimals; rounding the f4 back to 4
    # decimals gives the very float64 the event document holds.
    "confidence": Source("confidence", "rounded"),
    "visitorFound": Source("found", "flag"),
    "linkedId": Source("linked", "bytes"),
    "event.type": Source("event_type", "interned", kind=EVENT_TYPE_KIND, empty_is_missing=True),
    "signals.bot.detected": _bit("bot"),
    "signals.vpn.detected": _bit("vpn"),
    "signals.incognito": _bit("incognito"),
    "signals.tampered": _bit("tampered"),
    "signals.emulator": _bit("emulator"),
    "signals.proxy": _bit("proxy"),
    "signals.tor": _bit("tor"),
    "signals.rootedDevice": _bit("rootedDevice"),
    "signals.clonedApp": _bit("clonedApp"),
    "scores.abuse": Source("abuse", "rounded"),
    "scores.ato": Source("ato", "rounded"),
    "scores.bot": Source("bot", "rounded"),
    "scores.suspect": Source("suspect", "number"),
    "ip.address": Source("ip", "bytes"),
    "ip.country": Source("country", "interned", kind=COUNTRY_KIND, empty_is_missing=True),
    "ip.city": Source("city", "interned", kind=CITY_KIND),
    "ip.asn": Source("asn", "nonzero"),  # 0 is stored for no ASN (AS 0 is reserved)
    "ip.blocklisted": _bit("blocklisted"),
    "device.platform": Source("platform", "interned", kind=PLATFORM_KIND, empty_is_missing=True),
    "device.browser": Source("browser", "interned", kind=BROWSER_KIND, empty_is_missing=True),
    "device.type": Source("device_type", "interned", kind=DEVICE_TYPE_KIND),
    "device.os": Source("os", "interned", kind=OS_KIND),
    "velocity.distinctIps1h": Source("ips_1h", "number"),
    "velocity.distinctIps24h": Source("ips_24h", "number"),
    "velocity.visitorsPerIp1h": Source("visitors_ip_1h", "number"),
    "velocity.visitorsPerIp24h": Source("visitors_ip_24h", "number"),
    "velocity.accountsPerVisitor": Source("accounts", "number"),
}


_PENDING = -1  # the part number of the pending rows


class Window:
    """Rows of one tenant's identifications with start_us <= ts <= end_us that no tombstone
    hides, in segment order. Columns are read on demand, while the transaction is open."""

    def __init__(
        self, txn: lmdb.Transaction, store: Store, prefix: bytes, start_us: int, end_us: int
    ) -> None:
        self._txn, self._store, self._prefix = txn, store, prefix
        # Per segment: its number and the indexes of its rows in the window (None: all rows).
        self.parts: list[tuple[int, np.ndarray | None]] = []
        tombs = read_tombstones(txn, store, prefix, TABLE)
        stamps = []
        for number, meta in overlapping(txn, store, prefix, TABLE, start_us, end_us + 1):
            ts = self._read(number, "ts")
            hidden = tombs.get(number)
            rows = None
            if hidden or meta.min_ts < start_us or meta.max_ts > end_us:
                keep = (ts >= start_us) & (ts <= end_us)
                if hidden:
                    keep[np.fromiter(hidden, dtype=np.int64, count=len(hidden))] = False
                rows = np.flatnonzero(keep)
                if not len(rows):
                    continue
                ts = ts[rows]
            self.parts.append((number, rows))
            stamps.append(ts)
        # Rows not yet moved into a segment (pending_rows) come last, as one more part.
        ts = self._read(_PENDING, "ts")
        rows = np.flatnonzero((ts >= start_us) & (ts <= end_us))
        if len(rows):
            self.parts.append((_PENDING, None if len(rows) == len(ts) else rows))
            stamps.append(ts[rows])
        self.ts = np.concatenate(stamps) if stamps else np.zeros(0, np.int64)
        self.starts = np.cumsum([0] + [len(t) for t in stamps])
        self._cache: dict[str, np.ndarray] = {"ts": self.ts}

    def __len__(self) -> int:
        return len(self.ts)

    def _read(self, number: int, name: str) -> np.ndarray | VarColumn:
        if number == _PENDING:
            db = pending_rows.database(self._store, TABLE)
            return pending_rows.read(self._txn, db, self._prefix, TABLE, [name])[name]
        return read_columns(self._txn, self._store, self._prefix, TABLE, number, [name])[name]

    def fixed(self, name: str) -> np.ndarray:
        """A fixed-width column over the window's rows."""
        if name not in self._cache:
            chunks = []
            for number, rows in self.parts:
                col = self._read(number, name)
                chunks.append(col if rows is None else col[rows])  # type: ignore[index]
            self._cache[name] = np.concatenate(chunks) if chunks else np.zeros(0, np.uint32)
        return self._cache[name]

    def var(self, name: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A variable column, per segment: offsets, bytes and the indexes of the window's rows."""
        for number, rows in self.parts:
            col = self._read(number, name)
            assert isinstance(col, VarColumn)
            index = np.arange(len(col)) if rows is None else rows
            yield col.offsets, np.frombuffer(col.data, np.uint8), index

    def var_items(self, name: str, positions: Iterable[int]) -> dict[int, bytes]:
        """Values of a variable column at a few window positions (the sample's request ids)."""
        by_part: dict[int, list[int]] = {}
        for p in positions:
            by_part.setdefault(int(np.searchsorted(self.starts, p, "right")) - 1, []).append(p)
        out = {}
        for i, wanted in by_part.items():
            number, rows = self.parts[i]
            col = self._read(number, name)
            for p in wanted:
                at = p - int(self.starts[i])
                out[p] = col[at if rows is None else int(rows[at])]  # type: ignore[index]
        return out


class Coded(msgspec.Struct):
    """A program's columns and leaves as `rule_program.run_coded` takes them."""

    values: np.ndarray  # (slots, rows) float64
    slots: list[int]  # leaf -> row of `values`
    leaves: list[LeafCode]


def code_program(
    program: Program, window: Window, txn: lmdb.Transaction, store: Store, tenant: Tenant, now: int
) -> Coded:
    """The window's columns for `program`: one row per field its leaves read, plus one per leaf
    on a bytes column or on a large set of codes; lists as they are at `now`."""
    members = _Lists(txn, store, tenant, now)
    rows: list[np.ndarray] = []
    field_slot: dict[str, int] = {}
    slots, leaves = [], []
    for lf in program.leaves:
        field = program.fields[lf.slot]
        source, kind = SOURCES[field], rule_fields.FIELDS[field].kind
        if source.how == "bytes":
            row, code = _bytes_leaf(window, source.column, lf.op, lf.value, members)
            slots.append(len(rows))
            rows.append(row)
            leaves.append(code)
            continue
        if field not in field_slot:
            field_slot[field] = len(rows)
            rows.append(_column(window, source, txn, store, tenant.prefix))
        strings = _Interned(txn, store, tenant.prefix, source.kind, members)
        code = code_leaf(kind, lf, strings)
        if source.how == "interned" and code.members is not None:
            found = np.asarray(code.members, np.float64)
            if len(found) > LOOKUP_MIN:
                # A large set of codes: one table lookup per row beats a binary search.
                raw, column = window.fixed(source.column), rows[field_slot[field]]
                row, code = _lookup(raw, column, found, code.op)
                slots.append(len(rows))
                rows.append(row)
                leaves.append(code)
                continue
        slots.append(field_slot[field])
        leaves.append(code)
    values = np.empty((len(rows), len(window)), np.float64)
    for i, row in enumerate(rows):
        values[i] = row
    return Coded(values, slots, leaves)


def _column(
    window: Window, source: Source, txn: lmdb.Transaction, store: Store, prefix: bytes
) -> np.ndarray:
    raw = window.fixed(source.column)
    if source.how == "bit":
        return ((raw & source.bit) != 0).astype(np.float64)
    out = raw.astype(np.float64)
    if source.how == "rounded":
        return np.round(out, 4)
    if source.how == "nonzero":
        out[raw == 0] = np.nan
    elif source.how in ("flag", "interned"):
        out[raw == NO_VALUE] = np.nan
    if source.empty_is_missing:
        empty = dictionary.lookup(txn, store, prefix, source.kind, "")
        if empty is not None:
            out[raw == empty] = np.nan
    return out


def _lookup(
    raw: np.ndarray, column: np.ndarray, members: np.ndarray, op: int
) -> tuple[np.ndarray, LeafCode]:
    """A row holding membership of each row's code in `members` (1.0 or 0.0, NaN where the
    field has no value) and the leaf that reads it."""
    members = members[members >= 0].astype(np.int64)  # -1: a string never interned
    table = np.zeros(int(members.max()) + 1 if len(members) else 0, np.float64)
    table[members] = 1.0
    test = np.zeros(len(raw), np.float64)
    known = raw < len(table)
    test[known] = table[raw[known]]
    test[np.isnan(column)] = np.nan
    negated = op == rule_codes.NOT_IN
    return test, LeafCode(rule_codes.NE if negated else rule_codes.EQ, 1.0)


class _Lists:
    """The lists a program names, read once: type and live entries (None for a deleted list)."""

    def __init__(self, txn: lmdb.Transaction, store: Store, tenant: Tenant, now: int) -> None:
        self._txn, self._store, self._tenant, self._now = txn, store, tenant, now
        self._seen: dict[str, tuple[str, list[str]] | None] = {}

    def get(self, name: str) -> tuple[str, list[str]] | None:
        if name not in self._seen:
            self._seen[name] = lists.live_entries(
                self._txn, self._store, self._tenant, name, self._now
            )
        return self._seen[name]


class _Interned:
    """Codes of an interned string column: constants are looked up in the dictionary; a string
    never interned gets -1, which no row holds."""

    def __init__(
        self, txn: lmdb.Transaction, store: Store, prefix: bytes, kind: bytes, members: _Lists
    ) -> None:
        self._txn, self._store, self._prefix, self._kind = txn, store, prefix, kind
        self._members = members

    def code(self, value: str) -> float:
        found = dictionary.lookup(self._txn, self._store, self._prefix, self._kind, value)
        return -1.0 if found is None else float(found)

    def containing(self, part: str) -> list[float]:
        found = dictionary.containing(self._txn, self._store, self._prefix, self._kind, part)
        return [float(c) for c in found]

    def listed(self, name: str) -> np.ndarray:
        held = self._members.get(name)
        codes = BitMap()
        for entry in held[1] if held else ():
            found = dictionary.lookup(self._txn, self._store, self._prefix, self._kind, entry)
            if found is not None:
                codes.add(found)
        return np.fromiter(codes, dtype=np.float64, count=len(codes))


def _bytes_leaf(
    window: Window, column: str, op: str, value: object, members: _Lists
) -> tuple[np.ndarray, LeafCode]:
    """A row holding this leaf's test on a bytes column, and the leaf that reads it: the test is
    1.0 or 0.0 and NaN where the event has no value, so the kernel's missing-value rules for
    `not_equals`, `not_in` and `exists` apply unchanged."""
    from . import backtest_kernels as k

    parts = []
    if op == "contains":
        needle = np.frombuffer(str(value).encode(), np.uint8)
        parts = [k.contains(off, data, rows, needle) for off, data, rows in window.var(column)]
    else:
        fold = False
        if op == "exists":
            targets: Iterable[object] = ()
        elif isinstance(value, dict):
            held = members.get(value["list"])
            targets, fold = (held[1], held[0] == "email") if held else ((), False)
        else:
            targets = value if isinstance(value, list) else [value]
        wanted_set = {t.encode() for t in targets if isinstance(t, str)}
        wanted = sorted(wanted_set)
        t_offsets = np.cumsum([0] + [len(t) for t in wanted], dtype=np.int64)
        t_data = np.frombuffer(b"".join(wanted) or b"\0", np.uint8)
        for off, data, rows in window.var(column):
            codes = k.match_targets(off, data, rows, t_offsets, t_data, fold)
            test = np.where(codes >= 0, 1.0, 0.0)
            test[codes == k.MISSING] = np.nan
            for r in np.flatnonzero(codes == k.UNFOLDED):
                # Non-ASCII values fold with Python's own rules, as list membership does.
                text = bytes(data[off[rows[r]] : off[rows[r] + 1]]).decode().strip().lower()
                test[r] = float(text.encode() in wanted_set)
            parts.append(test)
    row = np.concatenate(parts) if parts else np.zeros(0, np.float64)
    if op == "exists":
        return row, LeafCode(rule_codes.EXISTS if value else rule_codes.MISSING)
    negated = op in ("not_equals", "not_in")
    return row, LeafCode(rule_codes.NE if negated else rule_codes.EQ, 1.0)
