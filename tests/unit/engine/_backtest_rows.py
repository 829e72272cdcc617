"""Identification rows for backtest tests: pools of values, events stored exactly as an
identification stores them, list fixtures and deletion of a visitor's rows."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st

from engine import identification as ident
from engine import pending_rows, velocity
from engine.backtest_columns import Window
from engine.lists import EntriesIn, ListIn
from engine.rule_fields import FIELDS
from engine.scores import Scores, Velocity
from engine.segments import add_tombstones, read_columns
from engine.signals import BotSignal, Signals, VpnSignal
from engine.timeutil import iso

DAY = velocity.DAY_US
VISITORS = ["pv_alpha1", "pv_Beta22", "pv_gamma3", "pv_delta4"]
STRINGS = {
    "visitorId": VISITORS,
    "linkedId": [None, "a@x.io", "A@X.io", " b@y.org ", "Zoë@Ex.de", "user_7"],
    "event.type": [None, "login", "registration", "Login"],
    "ip.address": ["10.0.0.1", "10.0.0.2", "2001:db8::1", "81.2.3.4"],
    "ip.country": [None, "DE", "US"],
    "ip.city": [None, "Berlin", "Bern", ""],
    "device.platform": [None, "Linux", "macOS"],
    "device.browser": [None, "Chrome 121", "Firefox 120"],
    "device.type": [None, "desktop", "mobile"],
    "device.os": [None, "Linux", "iOS"],
}
# Constants of rules: the stored values, one never stored, and substrings for `contains`.
CONSTANTS = sorted({s for pool in STRINGS.values() for s in pool if s} | {"nowhere", "", "o", "@"})
LISTS = {
    "vips": ("visitor", None, ["pv_alpha1", "pv_gamma3", "pv_unseen"]),
    "expired": ("visitor", 1, ["pv_Beta22"]),  # ttl 1 s: expired at the backtest's `now`
    "ips": ("ip", None, ["10.0.0.1", "2001:db8::1"]),
    "emails": ("email", None, ["a@x.io", "b@y.org", "zoë@ex.de"]),
}
LIST_TYPES = {name: kind for name, (kind, _, _) in LISTS.items()} | {
    "gone": "visitor",  # deleted: `in` is false and `not_in` true
    "gone_ips": "ip",
}
# Numbers the engine stores (3 or 4 decimals for confidence and scores, f4 columns), with pools
# that rules' constants hit; the constants add values no row holds.
NUMBERS = {
    "confidence": [0.5, 0.97, 0.999, 0.123],
    "scores.abuse": [0.0, 0.5, 0.97, 0.9999, 0.0123],
    "scores.suspect": [0, 10, 50, 75],
    "ip.asn": [None, 1, 3320, 64500],
}
DECIMALS = {"confidence": 1000, "scores.abuse": 10_000, "scores.ato": 10_000, "scores.bot": 10_000}
NUMBER_CONSTANTS = sorted(
    {v for pool in NUMBERS.values() for v in pool if v is not None} | {0.9700001, 2.5, -1, 3, 5}
)


def pool(field: str) -> list:
    if field in NUMBERS:
        return NUMBERS[field]
    return NUMBERS["scores.abuse"] if field.startswith("scores.") else [0, 1, 3, 5]


def number(field: str):
    if field in DECIMALS:
        d = DECIMALS[field]
        wide = st.integers(0, d).map(lambda i: round(i / d, 4))
    else:
        # No identification carries AS 0 (reserved; IP intelligence reports none instead).
        wide = st.integers(1 if field == "ip.asn" else 0, 100)
    return st.one_of(st.sampled_from(pool(field)), wide)


def constant(kind: str):
    if kind == "bool":
        return st.booleans()
    if kind == "number":
        return st.one_of(st.sampled_from(NUMBER_CONSTANTS), st.floats(0, 1))
    return st.sampled_from(CONSTANTS)


@st.composite
def leaves(draw):
    field = draw(st.sampled_from(sorted(FIELDS)))
    spec = FIELDS[field]
    ops = ["equals", "not_equals", "in", "not_in", "exists"]
    ops += {"number": ["gt", "gte", "lt", "lte"], "string": ["contains"]}.get(spec.kind, [])
    op = draw(st.sampled_from(ops))
    if op == "exists":
        value = draw(st.booleans())
    elif op in ("in", "not_in"):
        names = [n for n, t in LIST_TYPES.items() if t == spec.list_type]
        if names and draw(st.booleans()):
            value = {"list": draw(st.sampled_from(names))}
        else:
            value = draw(st.lists(constant(spec.kind), max_size=4))
    else:
        value = draw(constant("string" if op == "contains" else spec.kind))
    return {"field": field, "operator": op, "value": value}


trees = st.one_of(
    leaves(),
    st.recursive(
        leaves(),
        lambda children: st.builds(
            lambda op, rs: {"operator": op, "rules": rs},
            st.sampled_from(["AND", "OR"]),
            st.lists(children, min_size=1, max_size=4),
        ),
        max_leaves=10,
    ),
)


def event_of(s: dict, b: dict, n: dict, ts: int) -> ident.IdentificationEvent:
    """An identification as `_store_event` receives it, from field values by rule field."""
    scores = Scores(n["scores.abuse"], n["scores.ato"], n["scores.bot"], n["scores.suspect"])
    return ident.IdentificationEvent(
        requestId=ident.new_request_id(ts),
        visitorId=s["visitorId"],
        confidence=n["confidence"],
        visitorFound=b["visitorFound"],
        firstSeenAt=iso(ts),
        timestamp=iso(ts),
        device=ident.Device(
            platform=s["device.platform"],
            browser=s["device.browser"],
            type=s["device.type"],
            os=s["device.os"],
        ),
        signals=Signals(
            BotSignal(b["signals.bot.detected"]),
            VpnSignal(b["signals.vpn.detected"]),
            *(
                b[f"signals.{k}"]
                for k in (
                    "incognito",
                    "tampered",
                    "emulator",
                    "proxy",
                    "tor",
                    "rootedDevice",
                    "clonedApp",
                )
            ),
        ),
        scores=scores,
        ip=ident.IpDocument(
            s["ip.address"],
            s["ip.city"],
            s["ip.country"],
            None,
            None,
            n["ip.asn"],
            b["ip.blocklisted"],
        ),
        verdict=None,
        matchedRule=None,
        event=ident.EventInfo(s["event.type"], None),
        linkedId=s["linkedId"],
        velocity=Velocity(
            *(
                n[f"velocity.{k}"]
                for k in (
                    "distinctIps1h",
                    "distinctIps24h",
                    "visitorsPerIp1h",
                    "visitorsPerIp24h",
                    "accountsPerVisitor",
                )
            )
        ),
    )


def plain(visitor: str, ts: int, **strings) -> ident.IdentificationEvent:
    """A quiet event: first value of each pool, no signal, low scores."""
    s = {f: pool[0] for f, pool in STRINGS.items()} | {"visitorId": visitor} | strings
    b = {f: False for f, spec in FIELDS.items() if spec.kind == "bool"}
    n = {f: 0 for f, spec in FIELDS.items() if spec.kind == "number"} | {"ip.asn": None}
    return event_of(s, b, n, ts)


@st.composite
def events(draw, now: int, days: int) -> ident.IdentificationEvent:
    """Random stored identifications, with timestamps on and around the window's edges."""
    s = {f: draw(st.sampled_from(pool)) for f, pool in STRINGS.items()}
    b = {f: draw(st.booleans()) for f, spec in FIELDS.items() if spec.kind == "bool"}
    n = {f: draw(number(f)) for f, spec in FIELDS.items() if spec.kind == "number"}
    edge = [0, 1, days * DAY - 1, days * DAY, days * DAY + 1]
    ts = now - draw(st.one_of(st.sampled_from(edge), st.integers(0, (days + 2) * DAY)))
    return event_of(s, b, n, ts)


class StoreEvents:
    """Store identification events exactly as an identification does, at their timestamps."""

    def __init__(self, tenant, events, without=()):
        self.op, self.events, self.without = ident.IdentifyDevice(tenant, None), events, without

    def apply(self, ctx):
        p = self.op.tenant.prefix
        for event in self.events:
            self.op._store_event(ctx, event, event.scores, us(event.timestamp))
        # All rows but the last move into a segment now, as the compactor would; the last one
        # stays pending, so backtests read both (all move when columns are to be left out).
        columns = ctx.columns(p, "identifications")
        limit = max(0, len(self.events) - (0 if self.without else 1))
        pending_rows.drain(ctx.txn, ctx.store.idents, p, "identifications", columns, limit)
        for name in self.without:  # as a segment written before these columns existed
            columns.pop(name)


class Tombstone:
    """What deleting a visitor does to the columnar rows (the rest needs a visitor record)."""

    def __init__(self, tenant, visitor_id):
        self.tenant, self.visitor_id = tenant, visitor_id

    def apply(self, ctx):
        p = self.tenant.prefix
        code = ctx.interner.forget(ctx.txn, p, ident.VISITOR_KIND, self.visitor_id)
        pending_rows.delete_where(ctx.txn, ctx.store.idents, p, "identifications", "visitor", code)
        for number, _ in Window(ctx.txn, ctx.store, p, 0, 2**62).parts:
            if number < 0:
                continue  # the pending rows, deleted above
            cols = read_columns(ctx.txn, ctx.store, p, "identifications", number, ["visitor"])
            rows = np.flatnonzero(cols["visitor"] == code).tolist()
            if rows:
                add_tombstones(ctx.txn, ctx.store, p, "identifications", number, rows)


_names = itertools.count()


def tenant_with_lists(engine):
    ws = engine.create_workspace(f"bt{next(_names)}")
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    for name, (kind, ttl, entries) in LISTS.items():
        made = engine.create_list(tenant, ListIn(name=name, type=kind, ttl=ttl))
        engine.patch_list(tenant, made.id, EntriesIn(add=entries))
    return tenant


def us(stamp: str) -> int:
    return int(np.datetime64(stamp.rstrip("Z"), "us").astype(np.int64))
