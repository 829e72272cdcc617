"""Workspaces and keys: six keys, their environments, rotation, and only hashes at rest."""

from __future__ import annotations

import hashlib

import pytest

from engine.errors import InvalidApiKey, InvalidInput, NotFound


def test_keys_map_to_environment_and_kind(engine):
    ws = engine.create_workspace("acme", "growth")
    expected = {
        "plx_live": ("live", False), "plx_test": ("test", False), "sk_live": ("live", False),
        "sk_test": ("test", False), "pk_live": ("live", True), "pk_test": ("test", True),
    }  # fmt: skip
    for kind, (env, public) in expected.items():
        key = getattr(ws.keys, kind)
        assert key.startswith(kind + "_")
        info = engine.authenticate(key)
        assert (info.workspace_id, info.environment, info.public) == (ws.id, env, public)
    assert [w.plan for w in engine.workspaces()] == ["growth"]


def test_rotation_revokes_every_earlier_key(engine):
    ws = engine.create_workspace("acme")
    rotated = engine.rotate_keys(ws.id)
    for kind in ("plx_live", "plx_test", "sk_live", "sk_test", "pk_live", "pk_test"):
        with pytest.raises(InvalidApiKey):
            engine.authenticate(getattr(ws.keys, kind))
        assert engine.authenticate(getattr(rotated.keys, kind)).workspace_id == ws.id
    with pytest.raises(NotFound):
        engine.rotate_keys("ws_missing")


KINDS = ("plx_live", "plx_test", "sk_live", "sk_test", "pk_live", "pk_test")


def _raw_records(engine) -> list[bytes]:
    out = []
    with engine.store.env.begin() as txn:
        for db in engine.store.dbs.values():
            for key, value in txn.cursor(db=db):
                out += [bytes(key), bytes(value)]
    return out


def test_only_hashes_are_stored(engine):
    ws = engine.create_workspace("acme")
    rotated = engine.rotate_keys(ws.id)
    records = _raw_records(engine)
    with engine.store.env.begin() as txn:
        catalog_keys = [bytes(k) for k, _ in txn.cursor(db=engine.store.catalog)]
    for keys in (ws.keys, rotated.keys):
        for kind in KINDS:
            secret = getattr(keys, kind).encode()
            token = secret[len(kind) + 1 :]  # the random part, 32 characters
            assert len(token) >= 32
            assert not any(secret in r or token in r for r in records)
    for kind in KINDS:
        digest = hashlib.sha256(getattr(rotated.keys, kind).encode()).digest()
        assert any(digest in k for k in catalog_keys)


def test_create_returns_six_distinct_keys(engine):
    ws = engine.create_workspace("acme", "starter")
    assert ws.id.startswith("ws_") and ws.name == "acme" and ws.plan == "starter"
    keys = [getattr(ws.keys, kind) for kind in KINDS]
    assert len(set(keys)) == 6
    for kind, key in zip(KINDS, keys, strict=True):
        assert key.startswith(f"{kind}_") and len(key) > len(kind) + 30
    other = engine.create_workspace("acme", "starter")
    assert other.id != ws.id
    assert not set(keys) & {getattr(other.keys, kind) for kind in KINDS}
    assert engine.workspace(ws.id).name == "acme"
    assert [w.id for w in engine.workspaces()] == [ws.id, other.id]


def test_unknown_keys_are_refused(engine):
    ws = engine.create_workspace("acme")
    for bad in ("", "plx_live_", "plx_live_nope", ws.keys.plx_live + "x", ws.keys.plx_live[:-1]):
        with pytest.raises(InvalidApiKey):
            engine.authenticate(bad)
    with pytest.raises(NotFound):
        engine.workspace("ws_missing")


def test_every_rotation_revokes_all_earlier_keys_and_keeps_the_data(engine):
    ws = engine.create_workspace("acme")
    first = engine.rotate_keys(ws.id)
    second = engine.rotate_keys(ws.id)
    for old in (ws.keys, first.keys):
        for kind in KINDS:
            with pytest.raises(InvalidApiKey):
                engine.authenticate(getattr(old, kind))
    for kind in KINDS:
        info = engine.authenticate(getattr(second.keys, kind))
        assert info.workspace_id == ws.id
    # Revoked hashes are deleted, not left behind: six key records per workspace.
    with engine.store.env.begin() as txn:
        key_records = [
            k for k, _ in txn.cursor(db=engine.store.catalog) if k.startswith(b"key\x00")
        ]
    assert len(key_records) == 6
    assert (second.id, second.name, second.plan) == (ws.id, ws.name, ws.plan)


def test_rotation_of_one_workspace_leaves_others_alone(engine):
    a, b = engine.create_workspace("a"), engine.create_workspace("b")
    engine.rotate_keys(a.id)
    for kind in KINDS:
        assert engine.authenticate(getattr(b.keys, kind)).workspace_id == b.id


def test_keys_survive_reopening(tmp_path):
    from engine import Engine

    with Engine.open(tmp_path / "d") as e:
        ws = e.create_workspace("acme", "pro")
    with Engine.open(tmp_path / "d") as e:
        info = e.authenticate(ws.keys.pk_test)
        assert (info.workspace_id, info.environment, info.public) == (ws.id, "test", True)
        assert info.tenant.environment == "test"
        assert e.workspace(ws.id).plan == "pro"


def test_bad_names_and_plans(engine):
    with pytest.raises(InvalidInput):
        engine.create_workspace("", "scale")
    with pytest.raises(InvalidInput):
        engine.create_workspace("x", "platinum")
    with pytest.raises(InvalidInput):
        engine.create_workspace("x" * 201)
    assert engine.workspaces() == []
