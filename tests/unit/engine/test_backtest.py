"""Backtests count exactly the stored identifications that the reference evaluator matches."""

from __future__ import annotations

import copy
import itertools
import random

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, rules
from engine import backtest as bt
from engine import identification as ident
from engine.backtest_columns import SOURCES
from engine.device import AgentRequest
from engine.errors import InvalidInput, NotFound
from engine.lists import EntriesIn, ListIn, Membership
from engine.rule_fields import FIELDS
from engine.rule_program import compile_condition
from engine.rule_store import RuleIn
from engine.scores import Scores, Velocity
from engine.segments import ADDED, SCHEMAS, add_tombstones, read_columns
from engine.signals import BotSignal, Signals, VpnSignal
from engine.timeutil import iso, now_us

DAY = ident.DAY_US
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


def _pool(field: str) -> list:
    if field in NUMBERS:
        return NUMBERS[field]
    return NUMBERS["scores.abuse"] if field.startswith("scores.") else [0, 1, 3, 5]


def _number(field: str):
    if field in DECIMALS:
        d = DECIMALS[field]
        wide = st.integers(0, d).map(lambda i: round(i / d, 4))
    else:
        wide = st.integers(0, 100)
    return st.one_of(st.sampled_from(_pool(field)), wide)


def _constant(kind: str):
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
            value = draw(st.lists(_constant(spec.kind), max_size=4))
    else:
        value = draw(_constant("string" if op == "contains" else spec.kind))
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


def _event(s: dict, b: dict, n: dict, ts: int) -> ident.IdentificationEvent:
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


def _plain(visitor: str, ts: int, **strings) -> ident.IdentificationEvent:
    """A quiet event: first value of each pool, no signal, low scores."""
    s = {f: pool[0] for f, pool in STRINGS.items()} | {"visitorId": visitor} | strings
    b = {f: False for f, spec in FIELDS.items() if spec.kind == "bool"}
    n = {f: 0 for f, spec in FIELDS.items() if spec.kind == "number"} | {"ip.asn": None}
    return _event(s, b, n, ts)


@st.composite
def events(draw, now: int, days: int) -> ident.IdentificationEvent:
    """Random stored identifications, with timestamps on and around the window's edges."""
    s = {f: draw(st.sampled_from(pool)) for f, pool in STRINGS.items()}
    b = {f: draw(st.booleans()) for f, spec in FIELDS.items() if spec.kind == "bool"}
    n = {f: draw(_number(f)) for f, spec in FIELDS.items() if spec.kind == "number"}
    edge = [0, 1, days * DAY - 1, days * DAY, days * DAY + 1]
    ts = now - draw(st.one_of(st.sampled_from(edge), st.integers(0, (days + 2) * DAY)))
    return _event(s, b, n, ts)


class _StoreEvents:
    """Store identification events exactly as an identification does, at their timestamps."""

    def __init__(self, tenant, events, without=()):
        self.op, self.events, self.without = ident.IdentifyDevice(tenant, None), events, without

    def apply(self, ctx):
        for event in self.events:
            self.op._store_event(ctx, event, event.scores, _us(event.timestamp))
        for name in self.without:  # as a segment written before these columns existed
            ctx.columns(self.op.tenant.prefix, "identifications").pop(name)


class _Tombstone:
    """What deleting a visitor does to the columnar rows (the rest needs a visitor record)."""

    def __init__(self, tenant, visitor_id):
        self.tenant, self.visitor_id = tenant, visitor_id

    def apply(self, ctx):
        p = self.tenant.prefix
        code = ctx.interner.forget(ctx.txn, p, ident.VISITOR_KIND, self.visitor_id)
        for number, _ in bt.Window(ctx.txn, ctx.store, p, 0, 2**62).parts:
            cols = read_columns(ctx.txn, ctx.store, p, "identifications", number, ["visitor"])
            rows = np.flatnonzero(cols["visitor"] == code).tolist()
            if rows:
                add_tombstones(ctx.txn, ctx.store, p, "identifications", number, rows)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    config = EngineConfig(durability="relaxed", compaction=CompactionConfig(enabled=False))
    e = Engine.open(tmp_path_factory.mktemp("backtest"), config)
    yield e
    e.close()


_names = itertools.count()


def _tenant_with_lists(engine):
    ws = engine.create_workspace(f"bt{next(_names)}")
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    for name, (kind, ttl, entries) in LISTS.items():
        made = engine.create_list(tenant, ListIn(name=name, type=kind, ttl=ttl))
        engine.patch_list(tenant, made.id, EntriesIn(add=entries))
    return tenant


def _matched_ids(found: bt.Matches) -> list[str]:
    hits = np.flatnonzero(found.matched).tolist()
    return sorted(v.decode() for v in found.window.var_items("request", hits).values())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(), tree=trees, days=st.integers(1, 4), deleted=st.sampled_from([None, *VISITORS])
)
def test_matches_are_exactly_what_the_reference_evaluator_matches(
    shared, data, tree, days, deleted
):
    rules.validate(tree, LIST_TYPES)
    now = now_us() + 5_000_000  # past the expiry of the 1 s list entries
    tenant = _tenant_with_lists(shared)
    groups = data.draw(st.lists(st.lists(events(now, days), max_size=12), min_size=1, max_size=3))
    for group in groups:
        shared.writer.run(_StoreEvents(tenant, group))
    if deleted:
        shared.writer.run(_Tombstone(tenant, deleted))
    program = compile_condition(tree)
    with shared.store.read() as txn:
        found = bt.evaluate(txn, shared.store, tenant, program, days, now)
        members = Membership(txn, shared.store, tenant, now)
        kept = [
            e for e in itertools.chain(*groups)
            if e.visitorId != deleted and now - days * DAY <= _us(e.timestamp) <= now
        ]  # fmt: skip
        expected = [e for e in kept if rules.evaluate(tree, msgspec.to_builtins(e), members)]
        assert len(found.window) == len(kept)
        assert _matched_ids(found) == sorted(e.requestId for e in expected)


def _every_leaf():
    for field, spec in sorted(FIELDS.items()):
        consts = {"bool": [True, False], "number": NUMBER_CONSTANTS, "string": CONSTANTS}
        values = consts[spec.kind]
        ops = ["equals", "not_equals"]
        ops += {"number": ["gt", "gte", "lt", "lte"], "string": ["contains"]}.get(spec.kind, [])
        yield from ({"field": field, "operator": op, "value": v} for op in ops for v in values)
        yield from ({"field": field, "operator": "exists", "value": v} for v in (True, False))
        operands = [values[::2], values[1::2], []]
        operands += [{"list": n} for n, t in LIST_TYPES.items() if t == spec.list_type]
        for op in ("in", "not_in"):
            yield from ({"field": field, "operator": op, "value": v} for v in operands)


def test_every_leaf_on_every_field_agrees_with_the_reference(shared):
    """Each operator and constant on each field, over rows holding every pooled value."""
    rng = random.Random(7)
    now = now_us() + 5_000_000
    rows = []
    for i in range(120):
        s = {f: rng.choice(pool) for f, pool in STRINGS.items()}
        b = {f: rng.random() < 0.5 for f, spec in FIELDS.items() if spec.kind == "bool"}
        n = {f: rng.choice(_pool(f)) for f, spec in FIELDS.items() if spec.kind == "number"}
        rows.append(_event(s, b, n, now - i * 1000))
    tenant = _tenant_with_lists(shared)
    shared.writer.run(_StoreEvents(tenant, rows))
    documents = [msgspec.to_builtins(e) for e in rows]
    with shared.store.read() as txn:
        members = Membership(txn, shared.store, tenant, now)
        for leaf in _every_leaf():
            found = bt.evaluate(txn, shared.store, tenant, compile_condition(leaf), 1, now)
            want = sorted(e.requestId for e, d in zip(rows, documents, strict=True)
                          if rules.evaluate(leaf, d, members))  # fmt: skip
            assert _matched_ids(found) == want, leaf


def _us(stamp: str) -> int:
    return int(np.datetime64(stamp.rstrip("Z"), "us").astype(np.int64))


def test_every_rule_field_has_a_stored_column():
    assert set(SOURCES) == set(FIELDS)
    assert all(s.column in SCHEMAS["identifications"] for s in SOURCES.values())


def test_rows_written_before_the_new_columns_have_no_value_there(shared):
    tenant = _tenant_with_lists(shared)
    now = now_us()
    event = _plain("pv_alpha1", now - 10, **{"ip.country": "DE"})
    event.visitorFound, event.ip.city, event.device.type = True, "Berlin", "desktop"
    shared.writer.run(_StoreEvents(tenant, [event], without=ADDED["identifications"]))
    cases = [
        ("visitorFound", "equals", True, 0),
        ("visitorFound", "not_equals", True, 1),
        ("ip.city", "exists", False, 1),
        ("device.type", "in", ["desktop"], 0),
        ("device.os", "not_in", ["iOS"], 1),
        ("ip.country", "exists", True, 1),
    ]
    with shared.store.read() as txn:
        for field, op, value, want in cases:
            program = compile_condition({"field": field, "operator": op, "value": value})
            found = bt.evaluate(txn, shared.store, tenant, program, 1, now)
            assert int(found.matched.sum()) == want, (field, op, value)


CHROME = {
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36",
    "platform": "Linux x86_64",
    "languages": ["en-US"],
    "timezone": "Europe/Berlin",
    "screen": {"w": 1920, "h": 1080, "colorDepth": 24},
    "canvas": "c0",
    "audio": "1.5",
    "fonts": ["Arial"],
}


def _identify(engine, tenant, canvas: str, **extra) -> ident.IdentificationEvent:
    components = copy.deepcopy(CHROME) | {"canvas": canvas, "audio": canvas}
    request = msgspec.convert({"components": components, **extra}, AgentRequest)
    return engine.identify_device(tenant, request, client_ip="81.2.3.4")


def _rule(engine, tenant, conditions, verdict="block") -> str:
    body = {"name": "r", "conditions": conditions, "action": {"verdict": verdict}}
    return engine.create_rule(tenant, msgspec.convert(body, RuleIn)).id


def test_real_identifications_deleted_visitors_and_the_response(engine, tenant):
    seen = [_identify(engine, tenant, f"device-{i % 3}", type="login") for i in range(9)]
    seen += [_identify(engine, tenant, "device-0", type="registration")]
    rid = _rule(engine, tenant, {"field": "event.type", "operator": "equals", "value": "login"})
    result = engine.backtest(tenant, rid, bt.BacktestIn(days=1, sampleSize=2))
    assert (result.matchCount, result.totalEvents, result.days) == (9, 10, 1)
    assert result.ruleId == rid and result.matchRate == 0.9 and result.durationMs >= 0
    logins = {e.requestId: e for e in seen if e.event.type == "login"}
    # Nine matches, two picked: the newest, then the one 9 // 2 matches back.
    assert [s.requestId for s in result.sample] == [seen[8].requestId, seen[4].requestId]
    for s in result.sample:
        assert s.visitorId == logins[s.requestId].visitorId
        assert s.timestamp == logins[s.requestId].timestamp
    engine.delete_visitor(tenant, seen[0].visitorId)
    gone = [e for e in seen if e.visitorId == seen[0].visitorId]
    after = engine.backtest(tenant, rid, bt.BacktestIn(days=1, sampleSize=100))
    assert after.totalEvents == 10 - len(gone)
    assert after.matchCount == 9 - sum(e.event.type == "login" for e in gone)
    assert len(after.sample) == after.matchCount
    assert [s.timestamp for s in after.sample] == sorted(
        (s.timestamp for s in after.sample), reverse=True
    )
    assert engine.backtest(tenant, rid, bt.BacktestIn(sampleSize=0)).sample == []
    later = engine.backtest(tenant, rid, bt.BacktestIn(days=1), now=now_us() + 2 * DAY)
    assert (later.matchCount, later.totalEvents, later.estimatedFpr) == (0, 0, 0.0)


def test_estimated_fpr_is_the_share_of_matches_on_legitimate_looking_visitors(shared):
    tenant = _tenant_with_lists(shared)
    trusted = shared.create_list(tenant, ListIn(name="trusted_users", type="visitor"))
    shared.patch_list(tenant, trusted.id, EntriesIn(add=["pv_delta4"]))
    now = now_us()
    rows = []
    # alpha: 3 clean days (legitimate); Beta: 3 days, one bot event; gamma: one day only;
    # delta: one day, on an allow-named list (legitimate).
    plan = {"pv_alpha1": [1, 2, 3], "pv_Beta22": [1, 2, 3], "pv_gamma3": [1], "pv_delta4": [1]}
    for visitor, days_ago in plan.items():
        for d in days_ago:
            e = _plain(visitor, now - d * DAY + 1000)
            e.signals.bot.detected = visitor == "pv_Beta22" and d == 2
            rows.append(e)
    shared.writer.run(_StoreEvents(tenant, rows))
    program = compile_condition({"field": "confidence", "operator": "gte", "value": 0})
    with shared.store.read() as txn:
        found = bt.evaluate(txn, shared.store, tenant, program, 7, now)
        allowed = bt._allowed_visitors(txn, shared.store, tenant, now)
        assert found.matched.sum() == 8
        assert bt.estimated_fpr(found, allowed) == pytest.approx(4 / 8)
        assert bt.estimated_fpr(found, np.zeros(0, np.int64)) == pytest.approx(3 / 8)


def test_allow_rules_lists_count_as_allow_lists(engine, tenant):
    vips = engine.create_list(tenant, ListIn(name="vips", type="visitor"))
    first = _identify(engine, tenant, "solo")
    engine.patch_list(tenant, vips.id, EntriesIn(add=[first.visitorId]))
    rid = _rule(engine, tenant, {"field": "confidence", "operator": "gte", "value": 0})
    assert engine.backtest(tenant, rid).estimatedFpr == 0.0
    allow = {"field": "visitorId", "operator": "in", "value": {"list": "vips"}}
    _rule(engine, tenant, allow, verdict="allow")
    result = engine.backtest(tenant, rid)
    assert result.estimatedFpr == 1.0 and result.matchCount == 1


def test_bad_parameters_and_unknown_rules(engine, tenant):
    rid = _rule(engine, tenant, {"field": "confidence", "operator": "gt", "value": 0.5})
    for bad, field in [
        (bt.BacktestIn(days=0), "days"),
        (bt.BacktestIn(days=31), "days"),
        (bt.BacktestIn(sampleSize=101), "sampleSize"),
        (bt.BacktestIn(sampleSize=-1), "sampleSize"),
        (bt.BacktestIn(days=True), "days"),
    ]:
        with pytest.raises(InvalidInput) as err:
            engine.backtest(tenant, rid, bad)
        assert err.value.field == field
    with pytest.raises(NotFound) as missing:
        engine.backtest(tenant, "rul_nope")
    assert missing.value.field == "ruleId"
    for body, field in [(b'{"days": 31}', "days"), (b'{"sampleSize": 1.5}', "sampleSize")]:
        with pytest.raises(msgspec.ValidationError, match=field):
            msgspec.json.decode(body, type=bt.BacktestIn)


def test_the_kernel_stays_one_compiled_function(shared):
    from engine import rule_kernel

    tenant = _tenant_with_lists(shared)
    now = now_us()
    shared.writer.run(_StoreEvents(tenant, [_plain(v, now - 1) for v in VISITORS]))
    with shared.store.read() as txn:
        for tree in (
            {"field": "ip.address", "operator": "contains", "value": "10."},
            {"field": "scores.bot", "operator": "lt", "value": 0.5},
        ):
            bt.evaluate(txn, shared.store, tenant, compile_condition(tree), 1, now)
    assert len(rule_kernel.evaluate_rows.signatures) == 1
