"""User traits: merged per user, set_once keeps the first value, unset removes, all persisted."""

from __future__ import annotations

import pytest

from engine import Engine, IdentifyIn, codec
from engine.errors import InvalidInput, NotFound
from engine.profiles import decode_identify


def test_traits_merge_over_calls(engine, tenant):
    first = engine.identify(tenant, IdentifyIn(user_id="u1", traits={"plan": "free", "n": 1}))
    assert first.user_id == "u1" and first.traits == {"plan": "free", "n": 1}
    second = engine.identify(tenant, IdentifyIn(user_id="u1", traits={"plan": "pro", "seats": 3}))
    assert second.traits == {"plan": "pro", "n": 1, "seats": 3}
    assert engine.profile(tenant, "u1").traits == {"plan": "pro", "n": 1, "seats": 3}


def test_nested_values_are_replaced_not_deep_merged(engine, tenant):
    engine.identify(tenant, IdentifyIn(user_id="u", traits={"address": {"city": "Lyon", "zip": 1}}))
    engine.identify(tenant, IdentifyIn(user_id="u", traits={"address": {"city": "Oslo"}}))
    assert engine.profile(tenant, "u").traits == {"address": {"city": "Oslo"}}


def test_set_once_never_overwrites(engine, tenant):
    engine.identify(tenant, IdentifyIn(user_id="u", set_once={"signup": "2026-01-01", "src": "ad"}))
    result = engine.identify(
        tenant, IdentifyIn(user_id="u", set_once={"signup": "2027-01-01", "first_os": "ios"})
    )
    assert result.traits == {"signup": "2026-01-01", "src": "ad", "first_os": "ios"}
    # set_once does not overwrite a value set by traits either...
    engine.identify(tenant, IdentifyIn(user_id="u", traits={"plan": "pro"}))
    engine.identify(tenant, IdentifyIn(user_id="u", set_once={"plan": "free"}))
    assert engine.profile(tenant, "u").traits["plan"] == "pro"
    # ...but traits overwrite values set once, and win over set_once in the same call.
    both = engine.identify(
        tenant, IdentifyIn(user_id="u", traits={"signup": "fixed", "k": 1}, set_once={"k": 2})
    )
    assert both.traits["signup"] == "fixed" and both.traits["k"] == 1


def test_unset_removes_traits(engine, tenant):
    engine.identify(tenant, IdentifyIn(user_id="u", traits={"a": 1, "b": 2, "c": 3}))
    result = engine.identify(tenant, IdentifyIn(user_id="u", unset=["a", "missing"]))
    assert result.traits == {"b": 2, "c": 3}
    # unset is applied after traits of the same call
    result = engine.identify(tenant, IdentifyIn(user_id="u", traits={"b": 9, "d": 4}, unset=["b"]))
    assert result.traits == {"c": 3, "d": 4}
    # a removed trait may be set once again
    result = engine.identify(tenant, IdentifyIn(user_id="u", set_once={"a": "again"}))
    assert result.traits["a"] == "again"
    assert engine.profile(tenant, "u").traits == {"a": "again", "c": 3, "d": 4}


def test_profiles_are_per_user_and_per_tenant(engine, tenant):
    ws = engine.workspace(tenant.workspace_id)
    test_env = type(tenant)(ws.id, "test")
    engine.identify(tenant, IdentifyIn(user_id="u", traits={"env": "live"}))
    engine.identify(test_env, IdentifyIn(user_id="u", traits={"env": "test"}))
    engine.identify(tenant, IdentifyIn(user_id="u2", traits={"other": True}))
    assert engine.profile(tenant, "u").traits == {"env": "live"}
    assert engine.profile(test_env, "u").traits == {"env": "test"}
    with pytest.raises(NotFound):
        engine.profile(test_env, "u2")
    with pytest.raises(NotFound):
        engine.profile(tenant, "nobody")


def test_profiles_persist_across_reopening(tmp_path):
    with Engine.open(tmp_path / "d") as e:
        ws = e.create_workspace("p")
        tenant = e.authenticate(ws.keys.sk_live).tenant
        e.identify(tenant, IdentifyIn(user_id="u", traits={"plan": "pro", "list": [1, "x", None]}))
        e.identify(tenant, IdentifyIn(user_id="u", set_once={"first": 1.5}, unset=["plan"]))
        before = e.profile(tenant, "u")
    assert before.updated_us >= before.first_seen_us
    with Engine.open(tmp_path / "d") as e:
        after = e.profile(tenant, "u")
        assert after == before
        assert after.traits == {"list": [1, "x", None], "first": 1.5}
        e.identify(tenant, IdentifyIn(user_id="u", set_once={"first": 99}, traits={"z": 0}))
        again = e.profile(tenant, "u")
    assert again.traits == {"list": [1, "x", None], "first": 1.5, "z": 0}
    assert again.first_seen_us == before.first_seen_us
    assert again.updated_us >= before.updated_us


def test_validation(engine, tenant):
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"": 1}))
    assert info.value.field == "traits."
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", set_once={"k" * 201: 1}))
    assert info.value.field.startswith("set_once.")
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"big": "x" * (32 * 1024)}))
    assert info.value.field == "traits"
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"n": 2**64}))
    assert info.value.field == "traits"
    with pytest.raises(NotFound):
        engine.profile(tenant, "u")  # nothing of the refused calls was stored
    with pytest.raises(InvalidInput) as info:
        decode_identify(b'{"user_id": "", "traits": {}}')
    assert info.value.field == "user_id"
    with pytest.raises(InvalidInput) as info:
        decode_identify(b'{"user_id": "u", "traits": []}')
    assert info.value.field == "traits"
    ok = decode_identify(b'{"user_id": "u", "traits": {"a": {"b": [1]}}, "unset": ["c"]}')
    assert engine.identify(tenant, ok).traits == {"a": {"b": [1]}}


def test_size_is_checked_before_any_walk_of_the_traits(engine, tenant, monkeypatch):
    walked = []
    real = codec.number_out_of_range
    monkeypatch.setattr(codec, "number_out_of_range", lambda v: walked.append(v) or real(v))
    big = {f"k{i}": [2**64, i] for i in range(4000)}
    big[""] = 1
    for name in ("traits", "set_once"):
        with pytest.raises(InvalidInput) as info:
            engine.identify(tenant, IdentifyIn(user_id="u", **{name: big}))
        assert info.value.field == name
        assert "bytes encoded" in str(info.value)
    assert walked == []
    # An oversized set_once is refused before the traits are walked.
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"n": 2**64}, set_once=big))
    assert info.value.field == "set_once" and walked == []
    # Within the size, the errors are as they were.
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"n": 2**64}, set_once={"": 1}))
    assert info.value.field == "traits" and "outside" in str(info.value)
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"": 2**64}))
    assert info.value.field == "traits."


def test_deeply_nested_traits(engine, tenant):
    def nested(depth: int, inner: object) -> object:
        for _ in range(depth):
            inner = [inner]
        return inner

    # Deeper than the decoder takes: only Python callers can build it.
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", traits={"d": nested(5000, 1)}))
    assert info.value.field == "traits" and "nested too deeply" in str(info.value)
    with pytest.raises(InvalidInput) as info:
        engine.identify(tenant, IdentifyIn(user_id="u", set_once={"d": nested(450, 2**64)}))
    assert info.value.field == "set_once" and "outside" in str(info.value)
    body = b'{"user_id": "u", "traits": {"d": ' + b"[" * 450 + b"1" + b"]" * 450 + b"}}"
    assert engine.identify(tenant, decode_identify(body)).traits["d"] == nested(449, [1])
