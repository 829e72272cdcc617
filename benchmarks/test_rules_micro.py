"""Rule evaluation on the request path: 100 live rules against one identification, beside one
rule (baseline) in the same run.

The measured step is what `IdentifyDevice._decide` does per identification: read the active
rules (cached per process), build the event document once, evaluate every rule's compiled
program with the scalar path, list references answered from the store. None of the 100 rules
matches the event, so all of them run, the worst case for a verdict.
"""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from _synthetic_devices import Device
from engine import Engine, lists, rule_store
from engine.device import AgentRequest
from engine.lists import EntriesIn, ListIn
from engine.rule_store import Action, RuleIn
from engine.timeutil import now_us

RNG = random.Random(9)
DECODER = msgspec.json.Decoder(AgentRequest)


def _rule(i: int) -> dict:
    """Realistic shapes: 2 to 4 leaves over signals, scores, IP, velocity and lists."""
    leaves = [
        {"field": "signals.bot.detected", "operator": "equals", "value": True},
        {"field": "scores.suspect", "operator": "gte", "value": 60 + i % 40},
        {"field": "ip.country", "operator": "in", "value": ["KP", "IR", f"X{i % 7}"]},
        {"field": "velocity.distinctIps1h", "operator": "gt", "value": 5 + i % 10},
        {"field": "visitorId", "operator": "in", "value": {"list": "blocked_visitors"}},
        {"field": "event.type", "operator": "equals", "value": f"checkout_{i}"},
        {"field": "device.browser", "operator": "contains", "value": "HeadlessChrome"},
        {"field": "confidence", "operator": "lt", "value": 0.2},
    ]
    chosen = RNG.sample(leaves, RNG.randint(2, 4))
    if i % 3:
        return {"operator": "AND", "rules": chosen}
    return {"operator": "OR", "rules": [{"operator": "AND", "rules": chosen[:2]}, chosen[-1]]}


def _engine(tmp_path_factory, rules: int, shared_first_leaf: bool = True):
    engine = Engine.open(tmp_path_factory.mktemp(f"rules{rules}"))
    ws = engine.create_workspace("rules")
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    made = engine.create_list(tenant, ListIn(name="blocked_visitors", type="visitor"))
    engine.patch_list(tenant, made.id, EntriesIn(add=[f"pv_blocked{n:07d}" for n in range(500)]))
    for i in range(rules):
        # Never matches the benchmark's event: it needs bot, a high score or a rare country.
        tampered = {"field": "signals.tampered", "operator": "equals", "value": True}
        tree = {"operator": "AND", "rules": [tampered, _rule(i)]} if shared_first_leaf else _rule(i)
        request = RuleIn(
            name=f"r{i}", conditions=tree, action=Action("block"), status="live", priority=i
        )
        engine.writer.run(rule_store.CreateRule(tenant, request, now_us()))
    body = json.dumps({"components": Device(RNG, 1).components(False), "type": "login"})
    event = engine.identify_device(tenant, DECODER.decode(body), client_ip="81.2.3.4")
    assert event.verdict == "allow" or not shared_first_leaf
    return engine, tenant, event


def _decide(engine, tenant, event):
    cache = rule_store.RuleCache()
    store = engine.store

    def run():
        with store.read() as txn:
            active = cache.active(txn, store, tenant.prefix)
            values = active.compiled.values(msgspec.to_builtins(event))
            members = lists.Membership(txn, store, tenant, now_us())
            return active.compiled.matching(values, members)

    return run


@pytest.mark.benchmark(group="rules-verdict")
def test_baseline_one_live_rule(benchmark, tmp_path_factory):
    engine, tenant, event = _engine(tmp_path_factory, 1)
    try:
        assert benchmark(_decide(engine, tenant, event)) == []
    finally:
        engine.close()


@pytest.mark.benchmark(group="rules-verdict")
def test_hundred_live_rules(benchmark, tmp_path_factory):
    engine, tenant, event = _engine(tmp_path_factory, 100)
    try:
        assert benchmark(_decide(engine, tenant, event)) == []
    finally:
        engine.close()


@pytest.mark.benchmark(group="rules-verdict")
def test_hundred_live_rules_without_a_shared_first_leaf(benchmark, tmp_path_factory):
    """Every rule's own leaves run: a bot, score, country, velocity, list or browser test first."""
    engine, tenant, event = _engine(tmp_path_factory, 100, shared_first_leaf=False)
    try:
        benchmark(_decide(engine, tenant, event))
    finally:
        engine.close()
