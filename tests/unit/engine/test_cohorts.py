"""Cohort membership against a brute-force evaluation of the definition in plain Python, full
and incremental (users touched by ingestion), and member pages that stay on their snapshot."""

from __future__ import annotations

import itertools
import json
import time

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, cohort_store, cohorts, dictionary
from engine import events as ev
from engine.errors import InvalidInput
from engine.profiles import IdentifyIn, MergeTraits
from engine.property_filters import PropertyFilter, holds
from engine.timeutil import iso, now_us, parse_instant

USERS = [f"u{i}" for i in range(6)]
NAMES = ["a", "b", "c"]
NOW = now_us()
DAY = 86_400_000_000
_decode = msgspec.json.Decoder(cohorts.Group).decode


def _at(minutes_ago: int) -> int:
    return NOW - minutes_ago * 60_000_000


def _ingest(engine: Engine, tenant, rows) -> None:
    body = {"events": [{"user_id": u, "event": e, "timestamp": iso(_at(m)), "properties": {"n": n}}
                       for u, e, m, n in rows]}  # fmt: skip
    batch = ev.decode_batch(json.dumps(body).encode(), engine.config)
    engine.writer.run(engine._ingest_op(tenant, batch, True, True))


# -- brute force -------------------------------------------------------------------------------


def _window(node, now: int) -> tuple[int, int]:
    w = node["window"]
    if "last_days" in w:
        return now - w["last_days"] * DAY, now + 1
    return parse_instant(w["from"]), parse_instant(w["to"])


def _member(node, user: str, rows, traits, now: int) -> bool:
    kind = node["type"]
    if kind == "group":
        parts = [_member(c, user, rows, traits, now) for c in node["conditions"]]
        return (
            {"AND": all, "OR": any}[node["operator"]](parts)
            if node["operator"] != "NOT"
            else (not parts[0])
        )
    if kind == "property":
        f = PropertyFilter(node["property"], node["operator"], node.get("value"))
        return holds(f, traits.get(user, {}))
    low, high = _window(node, now)
    mine = sorted(((_at(m), i, e, n) for i, (u, e, m, n) in enumerate(rows)
                   if u == user and low <= _at(m) < high))  # fmt: skip
    if kind == "event":
        where = [PropertyFilter(**w) for w in node.get("where", [])]
        count = sum(
            1
            for _, _, e, n in mine
            if e == node["event"] and all(holds(f, {"n": n}) for f in where)
        )
        op, value = node["count"]["operator"], node["count"]["value"]
        return {"gte": count >= value, "lte": count <= value, "eq": count == value}[op]
    steps = node["steps"]
    within = node["within"]["value"] * 60_000_000
    for chain in itertools.combinations(mine, len(steps)):
        if all(chain[i][2] == steps[i] for i in range(len(steps))) and (
            chain[-1][0] - chain[0][0] <= within
        ):
            return True
    return False


# -- strategies --------------------------------------------------------------------------------

windows = st.one_of(
    st.builds(lambda d: {"last_days": d}, st.integers(1, 3)),
    st.builds(lambda a, b: {"from": iso(_at(a)), "to": iso(_at(b))},
              st.integers(1500, 4000), st.integers(0, 1400)),
)  # fmt: skip
event_conditions = st.builds(
    lambda e, op, v, where, w: {"type": "event", "event": e, "count": {"operator": op, "value": v},
                                "where": where, "window": w},
    st.sampled_from(NAMES), st.sampled_from(["gte", "lte", "eq"]), st.integers(0, 3),
    st.one_of(st.just([]), st.builds(lambda v: [{"property": "n", "operator": "gte", "value": v}],
                                     st.integers(0, 3))),
    windows,
)  # fmt: skip
sequences = st.builds(
    lambda steps, within, w: {"type": "sequence", "steps": steps,
                              "within": {"value": within, "unit": "minute"}, "window": w},
    st.lists(st.sampled_from(NAMES), min_size=2, max_size=3), st.integers(1, 600), windows,
)  # fmt: skip
properties = st.builds(
    lambda op, v: {"type": "property", "property": "plan", "operator": op, "value": v},
    st.sampled_from(["equals", "not_equals"]),
    st.sampled_from(["growth", "scale"]),
) | st.just({"type": "property", "property": "plan", "operator": "exists", "value": True})
leaves = st.one_of(event_conditions, sequences, properties)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda op, cs: {"type": "group", "operator": op, "conditions": cs},
                  st.sampled_from(["AND", "OR"]), st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"type": "group", "operator": "NOT", "conditions": [c]}, children),
    ),
    max_leaves=5,
)  # fmt: skip
event_rows = st.lists(
    st.tuples(st.sampled_from(USERS), st.sampled_from(NAMES), st.integers(0, 4000),
              st.integers(0, 3)),
    max_size=30,
)  # fmt: skip
trait_sets = st.dictionaries(st.sampled_from(USERS), st.sampled_from(["growth", "scale"]),
                             max_size=4)  # fmt: skip


def _fresh(factory) -> tuple[Engine, object]:
    engine = Engine.open(
        factory.mktemp("coh"), EngineConfig(compaction=CompactionConfig(enabled=False))
    )
    ws = engine.create_workspace("c")
    return engine, engine.authenticate(ws.keys.plx_live).tenant


def _names(engine, tenant, bitmap) -> set[str]:
    with engine.store.read() as txn:
        return set(
            dictionary.strings(txn, engine.store, tenant.prefix, dictionary.USER, bitmap).values()
        )


def _known(rows, traits) -> set[str]:
    return {u for u, *_ in rows} | set(traits)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees, rows=event_rows, traits=trait_sets)
def test_membership_agrees_with_brute_force(tmp_path_factory, tree, rows, traits):
    engine, tenant = _fresh(tmp_path_factory)
    try:
        if rows:
            _ingest(engine, tenant, rows)
        for user, plan in traits.items():
            engine.writer.run(MergeTraits(tenant, IdentifyIn(user_id=user, traits={"plan": plan})))
        root = {"type": "group", "operator": "AND", "conditions": [tree]}
        definition = _decode(json.dumps(root))
        cohorts.validate_definition(definition)
        with engine.store.read() as txn:
            got = cohorts.evaluate(txn, engine.store, tenant, definition, NOW)
        traits_of = {u: {"plan": p} for u, p in traits.items()}
        expected = {u for u in _known(rows, traits) if _member(root, u, rows, traits_of, NOW)}
        assert _names(engine, tenant, got) == expected
    finally:
        engine.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees, first=event_rows, later=event_rows, traits=trait_sets)
def test_incremental_refresh_equals_a_full_evaluation(tmp_path_factory, tree, first, later, traits):
    """Fixed windows only: a sliding one legitimately waits for its scheduled full refresh."""
    engine, tenant = _fresh(tmp_path_factory)
    try:
        if first:
            _ingest(engine, tenant, first)
        root = {"type": "group", "operator": "OR", "conditions": [tree]}
        request = cohort_store.CohortIn(name="c", definition=_decode(json.dumps(root)))
        cohorts.validate_definition(request.definition)
        made = engine.create_cohort(tenant, request)
        if later:
            _ingest(engine, tenant, later)
        for user, plan in traits.items():
            engine.writer.run(MergeTraits(tenant, IdentifyIn(user_id=user, traits={"plan": plan})))
        engine.refresh_cohorts(tenant)
        with engine.store.read() as txn:
            record = cohort_store.get(txn, engine.store, tenant.prefix, made.id)
            current = cohort_store.members(txn, engine.store, tenant.prefix, record)
            full = cohorts.evaluate(txn, engine.store, tenant, record.definition, now_us())
        if not cohorts.slides(request.definition):
            assert current == full
        else:  # what ingestion touched is current; the rest waits for the scheduled refresh
            touched = {u for u, *_ in later} | set(traits)
            current_names, full_names = (
                _names(engine, tenant, current),
                _names(engine, tenant, full),
            )
            assert current_names & touched == full_names & touched
    finally:
        engine.close()


def test_member_pages_stay_on_their_snapshot(engine, tenant):
    rows = [(f"user{i:04d}", "a", 5, 0) for i in range(1200)]
    for i in range(0, 1200, 500):
        _ingest(engine, tenant, rows[i : i + 500])
    definition = _decode(json.dumps({"type": "group", "operator": "AND", "conditions": [
        {"type": "event", "event": "a", "window": {"last_days": 1}}]}))  # fmt: skip
    made = engine.create_cohort(tenant, cohort_store.CohortIn(name="all", definition=definition))
    assert made.size == 1200
    first = engine.cohort_members(tenant, made.id)
    assert len(first.userIds) == 500 and first.hasMore
    # Membership grows between pages: the cursor keeps reading the snapshot it started on.
    _ingest(engine, tenant, [(f"late{i}", "a", 1, 0) for i in range(40)])
    assert engine.refresh_cohorts(tenant) == 1
    assert engine.cohort(tenant, made.id).size == 1240
    second = engine.cohort_members(tenant, made.id, cursor=first.nextCursor)
    third = engine.cohort_members(tenant, made.id, cursor=second.nextCursor)
    assert (len(second.userIds), len(third.userIds), third.hasMore) == (500, 200, False)
    seen = first.userIds + second.userIds + third.userIds
    assert sorted(seen) == sorted(u for u, *_ in rows) and third.size == 1200
    fresh = engine.cohort_members(tenant, made.id, limit=500)
    assert fresh.size == 1240
    with pytest.raises(InvalidInput) as bad:
        engine.cohort_members(tenant, made.id, cursor="nonsense!")
    assert bad.value.field == "cursor"


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"type": "group", "operator": "NOT", "conditions": []}, "definition.conditions"),
        ({"type": "group", "operator": "AND", "conditions": [{"type": "sequence", "steps": ["a"]}]},
         "definition.conditions[0].steps"),
        ({"type": "group", "operator": "AND", "conditions": [
            {"type": "event", "event": "a", "window": {"last_days": 3, "from": "2026-01-01"}}]},
         "definition.conditions[0].window"),
        ({"type": "group", "operator": "AND", "conditions": [
            {"type": "property", "property": "plan", "operator": "in", "value": "x"}]},
         "definition.conditions[0].value"),
    ],
)  # fmt: skip
def test_bad_definitions_name_the_field(definition, field):
    body = json.dumps({"name": "x", "definition": definition}).encode()
    with pytest.raises(InvalidInput) as caught:
        cohort_store.decode_request(body)
    assert caught.value.field == field


def test_a_restarted_engine_refreshes_what_was_touched_before_it_stopped(tmp_path, monkeypatch):
    from engine import compaction

    # Without the refresh at start, only a write or the periodic tick would bring the member in.
    monkeypatch.setattr(compaction, "_COHORT_TICK_S", 3600.0)
    condition = {"type": "property", "property": "plan", "operator": "exists", "value": True}
    definition = _decode(
        json.dumps({"type": "group", "operator": "AND", "conditions": [condition]})
    )
    quiet = EngineConfig(compaction=CompactionConfig(enabled=False))
    with Engine.open(tmp_path / "d", quiet) as engine:
        tenant = engine.authenticate(engine.create_workspace("c").keys.plx_live).tenant
        made = engine.create_cohort(tenant, cohort_store.CohortIn(name="p", definition=definition))
        # Stored and acknowledged, but the process stops before any refresh ran.
        engine.writer.run(MergeTraits(tenant, IdentifyIn(user_id="u1", traits={"plan": "pro"})))
        assert engine.cohort_members(tenant, made.id).userIds == []
    with Engine.open(tmp_path / "d") as engine:
        deadline = time.monotonic() + 60
        while engine.cohort_members(tenant, made.id).userIds != ["u1"]:
            assert time.monotonic() < deadline, "the member never appeared"
            time.sleep(0.05)
