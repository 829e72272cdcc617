"""The compiled program's two evaluators agree with the reference evaluator on any condition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import rule_program, rules
from engine.errors import InvalidInput
from engine.rule_scalar import RuleSet

STRINGS = ["a", "b", "ab", "pv_1", "pv_2", "10.0.0.1", "DE", "US", ""]
FIELDS = {
    "signals.bot.detected": "bool",
    "visitorFound": "bool",
    "scores.suspect": "number",
    "confidence": "number",
    "visitorId": "string",
    "ip.address": "string",
    "ip.country": "string",
    "event.type": "string",
}
LISTS = {"visitors": {"pv_1", "a"}, "ips": {"10.0.0.1"}, "empty": set()}
LIST_TYPES = {"visitors": "visitor", "ips": "ip", "empty": "visitor"}


def scalar(kind):
    if kind == "bool":
        return st.booleans()
    if kind == "number":
        return st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.5, 100.0]))
    return st.sampled_from(STRINGS)


@st.composite
def leaves(draw):
    field = draw(st.sampled_from(sorted(FIELDS)))
    kind = FIELDS[field]
    ops = ["equals", "not_equals", "in", "not_in", "exists"]
    if kind == "number":
        ops += ["gt", "gte", "lt", "lte"]
    if kind == "string":
        ops += ["contains"]
    op = draw(st.sampled_from(ops))
    if op == "exists":
        value = draw(st.booleans())
    elif op in ("in", "not_in"):
        if field in ("visitorId", "ip.address") and draw(st.booleans()):
            wanted = "visitor" if field == "visitorId" else "ip"
            names = [n for n, t in LIST_TYPES.items() if t == wanted]
            value = {"list": draw(st.sampled_from(names))}
        else:
            value = draw(st.lists(scalar(kind), max_size=4))
    else:
        value = draw(scalar("string" if op == "contains" else kind))
    return {"field": field, "operator": op, "value": value}


trees = st.recursive(
    leaves(),
    lambda children: st.builds(
        lambda op, rs: {"operator": op, "rules": rs},
        st.sampled_from(["AND", "OR"]),
        st.lists(children, min_size=1, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def documents(draw):
    doc: dict = {"signals": {"bot": {}}, "scores": {}, "ip": {}, "event": {}}
    for field, kind in FIELDS.items():
        if draw(st.integers(0, 4)) == 0:
            continue  # missing
        *parents, last = field.split(".")
        target = doc
        for p in parents:
            target = target[p]
        target[last] = draw(scalar(kind))
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, docs=st.lists(documents(), min_size=1, max_size=12))
def test_scalar_and_kernel_agree_with_the_reference(tree, docs):
    rules.validate(tree, LIST_TYPES)
    program = rule_program.compile_condition(tree)
    expected = [rules.evaluate(tree, d, LISTS) for d in docs]
    assert [rule_program.run(program, d, LISTS) for d in docs] == expected
    # The request path: the program compiled into closures, alone and inside a rule set whose
    # other rules read other fields (so slots are shared and shifted).
    other = rule_program.compile_condition({"field": "ip.asn", "operator": "exists", "value": True})
    rule_set = RuleSet([other, program])
    assert [rule_set.tests[1](rule_set.values(d), LISTS) for d in docs] == expected
    columns = rule_program.columns_from_documents(program.fields, docs)
    assert rule_program.run_columns(program, columns, LISTS).tolist() == expected


def test_missing_field_semantics():
    doc = {"signals": {"bot": {}}}
    cases = {
        ("equals", True): False,
        ("not_equals", True): True,
        ("exists", True): False,
        ("exists", False): True,
        ("in", (True,)): False,
        ("not_in", (True,)): True,
    }
    for (op, value), want in cases.items():
        operand = list(value) if isinstance(value, tuple) else value
        tree = {"field": "signals.bot.detected", "operator": op, "value": operand}
        assert rules.evaluate(tree, doc, {}) is want, (op, value)


def _group(leaf):
    return {"operator": "OR", "rules": [leaf]}


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        ({"field": "nope", "operator": "equals", "value": 1}, "conditions.field"),
        ({"field": "confidence", "operator": "matches", "value": 1}, "conditions.operator"),
        ({"field": "confidence", "operator": "gt", "value": "high"}, "conditions.value"),
        ({"field": "device.type", "operator": "gt", "value": 1}, "conditions.operator"),
        ({"field": "signals.tor", "operator": "equals", "value": 1}, "conditions.value"),
        ({"operator": "AND", "rules": []}, "conditions.rules"),
        ({"operator": "XOR", "rules": [{}]}, "conditions.operator"),
        (
            _group({"field": "visitorId", "operator": "in", "value": {"list": "x"}}),
            "conditions.rules[0].value.list",
        ),
        (
            _group({"field": "ip.country", "operator": "in", "value": {"list": "ips"}}),
            "conditions.rules[0].value.list",
        ),
        ({"field": "ip.country", "operator": "in", "value": ["DE", 3]}, "conditions.value[1]"),
    ],
)
def test_invalid_conditions_name_the_exact_field(tree, field):
    with pytest.raises(InvalidInput) as err:
        rules.validate(tree, LIST_TYPES)
    assert err.value.field == field


def test_depth_and_leaf_limits():
    deep: dict = {"field": "confidence", "operator": "gt", "value": 0.5}
    for _ in range(10):
        deep = {"operator": "AND", "rules": [deep]}
    with pytest.raises(InvalidInput):
        rules.validate(deep)
    leaf = {"field": "confidence", "operator": "gt", "value": 0}
    with pytest.raises(InvalidInput):
        rules.validate({"operator": "OR", "rules": [leaf] * 101})


def test_kernel_is_one_compiled_function_for_every_program():
    from engine import rule_kernel

    a = rule_program.compile_condition({"field": "confidence", "operator": "gt", "value": 0.5})
    b = rule_program.compile_condition(
        _group({"field": "ip.country", "operator": "equals", "value": "DE"})
        | {"rules": [
            {"field": "ip.country", "operator": "equals", "value": "DE"},
            {"field": "scores.suspect", "operator": "gte", "value": 3},
        ]}
    )  # fmt: skip
    docs = [{"confidence": 0.9, "ip": {"country": "DE"}, "scores": {"suspect": 1}}]
    for program in (a, b):
        cols = rule_program.columns_from_documents(program.fields, docs)
        result = rule_program.run_columns(program, cols, {})
        assert result.tolist() == [True] and result.dtype == np.bool_
    assert len(rule_kernel.evaluate_rows.signatures) == 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    forest=st.lists(trees, min_size=1, max_size=6),
    docs=st.lists(documents(), min_size=1, max_size=8),
)
def test_a_generated_rule_set_matches_what_the_reference_matches(forest, docs):
    """The generated function of a whole set (leaves shared between rules, computed lazily)
    returns exactly the rules the reference evaluator matches, in order."""
    for tree in forest:
        rules.validate(tree, LIST_TYPES)
    # The same tree twice: its leaves are shared, not recomputed.
    programs = [rule_program.compile_condition(t) for t in [*forest, forest[0]]]
    rule_set = RuleSet(programs)
    for d in docs:
        expected = [i for i, t in enumerate([*forest, forest[0]]) if rules.evaluate(t, d, LISTS)]
        values = rule_set.values(d)
        assert rule_set.matching(values, LISTS) == expected
        assert rule_set._each(values, LISTS) == expected  # the path of sets too big to generate
