"""Workspaces and keys: six keys, their environments, rotation, and only hashes at rest."""

from __future__ import annotations

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


def test_only_hashes_are_stored(engine):
    ws = engine.create_workspace("acme")
    secrets = [getattr(ws.keys, k).encode() for k in ("plx_live", "sk_live", "pk_test")]
    with engine.store.env.begin() as txn:
        for db in engine.store.dbs.values():
            for key, value in txn.cursor(db=db):
                for secret in secrets:
                    assert secret not in key and secret not in value
                    assert secret.split(b"_")[-1] not in value


def test_bad_names_and_plans(engine):
    with pytest.raises(InvalidInput):
        engine.create_workspace("", "scale")
    with pytest.raises(InvalidInput):
        engine.create_workspace("x", "platinum")
