"""Backtests count exactly the stored identifications that the reference evaluator matches."""

from __future__ import annotations

import itertools
import random

import msgspec
import numpy as np
import pytest
from _backtest_rows import (
    CONSTANTS,
    DAY,
    LIST_TYPES,
    NUMBER_CONSTANTS,
    STRINGS,
    VISITORS,
    StoreEvents,
    Tombstone,
    event_of,
    events,
    plain,
    pool,
    tenant_with_lists,
    trees,
    us,
)
from _devices import DESKTOP, components
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, backtest_columns, rules
from engine import backtest as bt
from engine import identification as ident
from engine.backtest_columns import SOURCES
from engine.device import AgentRequest
from engine.errors import InvalidInput, NotFound
from engine.lists import EntriesIn, ListIn, Membership
from engine.rule_fields import FIELDS
from engine.rule_program import compile_condition
from engine.rule_store import RuleIn
from engine.segments import ADDED, SCHEMAS
from engine.timeutil import now_us


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    config = EngineConfig(durability="relaxed", compaction=CompactionConfig(enabled=False))
    e = Engine.open(tmp_path_factory.mktemp("backtest"), config)
    yield e
    e.close()


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
    tenant = tenant_with_lists(shared)
    groups = data.draw(st.lists(st.lists(events(now, days), max_size=12), min_size=1, max_size=3))
    for group in groups:
        shared.writer.run(StoreEvents(tenant, group))
    if deleted:
        shared.writer.run(Tombstone(tenant, deleted))
    program = compile_condition(tree)
    with shared.store.read() as txn:
        found = bt.evaluate(txn, shared.store, tenant, program, days, now)
        members = Membership(txn, shared.store, tenant, now)
        kept = [
            e for e in itertools.chain(*groups)
            if e.visitorId != deleted and now - days * DAY <= us(e.timestamp) <= now
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


@pytest.mark.parametrize("lookup_min", [backtest_columns.LOOKUP_MIN, 0])
def test_every_leaf_on_every_field_agrees_with_the_reference(shared, monkeypatch, lookup_min):
    """Each operator and constant on each field, over rows holding every pooled value; sets of
    codes by binary search in the kernel and by table lookup."""
    monkeypatch.setattr(backtest_columns, "LOOKUP_MIN", lookup_min)
    rng = random.Random(7)
    now = now_us() + 5_000_000
    rows = []
    for i in range(120):
        s = {f: rng.choice(pool) for f, pool in STRINGS.items()}
        b = {f: rng.random() < 0.5 for f, spec in FIELDS.items() if spec.kind == "bool"}
        n = {f: rng.choice(pool(f)) for f, spec in FIELDS.items() if spec.kind == "number"}
        rows.append(event_of(s, b, n, now - i * 1000))
    tenant = tenant_with_lists(shared)
    shared.writer.run(StoreEvents(tenant, rows))
    documents = [msgspec.to_builtins(e) for e in rows]
    with shared.store.read() as txn:
        members = Membership(txn, shared.store, tenant, now)
        for leaf in _every_leaf():
            found = bt.evaluate(txn, shared.store, tenant, compile_condition(leaf), 1, now)
            want = sorted(e.requestId for e, d in zip(rows, documents, strict=True)
                          if rules.evaluate(leaf, d, members))  # fmt: skip
            assert _matched_ids(found) == want, leaf


def test_every_rule_field_has_a_stored_column():
    assert set(SOURCES) == set(FIELDS)
    assert all(s.column in SCHEMAS["identifications"] for s in SOURCES.values())


def test_rows_written_before_the_new_columns_have_no_value_there(shared):
    tenant = tenant_with_lists(shared)
    now = now_us()
    event = plain("pv_alpha1", now - 10, **{"ip.country": "DE"})
    event.visitorFound, event.ip.city, event.device.type = True, "Berlin", "desktop"
    shared.writer.run(StoreEvents(tenant, [event], without=ADDED["identifications"]))
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


def _identify(engine, tenant, canvas: str, **extra) -> ident.IdentificationEvent:
    payload = components(DESKTOP, canvas=canvas, audio=canvas)
    request = msgspec.convert({"components": payload, **extra}, AgentRequest)
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
    tenant = tenant_with_lists(shared)
    trusted = shared.create_list(tenant, ListIn(name="trusted_users", type="visitor"))
    shared.patch_list(tenant, trusted.id, EntriesIn(add=["pv_delta4"]))
    now = now_us()
    rows = []
    # alpha: 3 clean days (legitimate); Beta: 3 days, one bot event; gamma: one day only;
    # delta: one day, on an allow-named list (legitimate).
    plan = {"pv_alpha1": [1, 2, 3], "pv_Beta22": [1, 2, 3], "pv_gamma3": [1], "pv_delta4": [1]}
    for visitor, days_ago in plan.items():
        for d in days_ago:
            e = plain(visitor, now - d * DAY + 1000)
            e.signals.bot.detected = visitor == "pv_Beta22" and d == 2
            rows.append(e)
    shared.writer.run(StoreEvents(tenant, rows))
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

    tenant = tenant_with_lists(shared)
    now = now_us()
    shared.writer.run(StoreEvents(tenant, [plain(v, now - 1) for v in VISITORS]))
    with shared.store.read() as txn:
        for tree in (
            {"field": "ip.address", "operator": "contains", "value": "10."},
            {"field": "scores.bot", "operator": "lt", "value": 0.5},
        ):
            bt.evaluate(txn, shared.store, tenant, compile_condition(tree), 1, now)
    assert len(rule_kernel.evaluate_rows.signatures) == 1
