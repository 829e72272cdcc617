"""Interning: dense ids per tenant and kind, stable across reopening, unharmed by aborts."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, EventIn, dictionary
from engine.dictionary import Interner
from engine.tenant import Tenant


def _intern(store, interner, prefix, kind, values, commit=True):
    txn = store.begin_write()
    ids = [interner.intern(txn, prefix, kind, v) for v in values]
    if commit:
        interner.commit(txn)
        txn.commit()
        interner.committed()
    else:
        txn.abort()
        interner.aborted()
    return ids


def test_dense_ids_per_tenant_and_kind(engine):
    store, interner = engine.store, Interner(engine.store)
    a, b = Tenant("ws_a", "live").prefix, Tenant("ws_a", "test").prefix
    assert _intern(store, interner, a, dictionary.USER, ["x", "y", "x", "z"]) == [0, 1, 0, 2]
    assert _intern(store, interner, a, dictionary.EVENT, ["x"]) == [0]
    assert _intern(store, interner, b, dictionary.USER, ["z"]) == [0]
    with store.read() as txn:
        assert dictionary.lookup(txn, store, a, dictionary.USER, "z") == 2
        assert dictionary.strings(txn, store, a, dictionary.USER, [0, 1, 2]) == {
            0: "x",
            1: "y",
            2: "z",
        }


def test_aborted_ids_are_not_remembered(engine):
    store, interner = engine.store, Interner(engine.store)
    prefix = Tenant("ws_a", "live").prefix
    assert _intern(store, interner, prefix, dictionary.USER, ["lost"], commit=False) == [0]
    assert _intern(store, interner, prefix, dictionary.USER, ["kept", "lost"]) == [0, 1]
    with store.read() as txn:
        assert dictionary.strings(txn, store, prefix, dictionary.USER, [0, 1]) == {
            0: "kept",
            1: "lost",
        }


def test_ids_survive_reopening(tmp_path):
    with Engine.open(tmp_path / "d") as e:
        prefix = Tenant("ws_a", "live").prefix
        ids = _intern(e.store, Interner(e.store), prefix, dictionary.USER, ["a", "b"])
    with Engine.open(tmp_path / "d") as e:
        again = _intern(e.store, Interner(e.store), prefix, dictionary.USER, ["b", "a", "c"])
    assert again == [ids[1], ids[0], 2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), max_size=40), st.integers(1, 4))
def test_ids_are_first_sighting_order_over_several_transactions(tmp_path_factory, values, splits):
    """Same string -> same id, distinct strings -> distinct ids 0, 1, 2, ... in order of first
    sighting, whether the strings arrive in one transaction or several."""
    with Engine.open(tmp_path_factory.mktemp("dict"), EngineConfig(durability="relaxed")) as e:
        interner = Interner(e.store)
        prefix = Tenant("ws_h", "live").prefix
        got: list[int] = []
        step = max(1, len(values) // splits)
        for i in range(0, len(values), step):
            got += _intern(e.store, interner, prefix, dictionary.USER, values[i : i + step])
        expected_ids: dict[str, int] = {}
        for v in values:
            expected_ids.setdefault(v, len(expected_ids))
        assert got == [expected_ids[v] for v in values]
        with e.store.read() as txn:
            back = dictionary.strings(txn, e.store, prefix, dictionary.USER, range(len(values)))
        assert back == {i: v for v, i in expected_ids.items()}


def test_kinds_do_not_share_ids_or_strings(engine):
    store, interner = engine.store, Interner(engine.store)
    prefix = Tenant("ws_k", "live").prefix
    assert _intern(store, interner, prefix, dictionary.USER, ["a", "b"]) == [0, 1]
    assert _intern(store, interner, prefix, dictionary.EVENT, ["b", "a", "c"]) == [0, 1, 2]
    with store.read() as txn:
        assert dictionary.lookup(txn, store, prefix, dictionary.USER, "c") is None
        assert dictionary.strings(txn, store, prefix, dictionary.USER, [0, 1, 2]) == {
            0: "a",
            1: "b",
        }
        assert dictionary.strings(txn, store, prefix, dictionary.EVENT, [0, 1, 2]) == {
            0: "b",
            1: "a",
            2: "c",
        }


def test_tenants_with_shared_leading_substrings_do_not_share_ids(engine):
    store, interner = engine.store, Interner(engine.store)
    a, ab = Tenant("ws_a", "live").prefix, Tenant("ws_ab", "live").prefix
    assert _intern(store, interner, a, dictionary.USER, ["x", "y"]) == [0, 1]
    assert _intern(store, interner, ab, dictionary.USER, ["y"]) == [0]
    with store.read() as txn:
        assert dictionary.lookup(txn, store, ab, dictionary.USER, "x") is None
        assert dictionary.strings(txn, store, ab, dictionary.USER, [0, 1]) == {0: "y"}


def _user_ids(engine, tenant, names):
    with engine.store.read() as txn:
        return [
            dictionary.lookup(txn, engine.store, tenant.prefix, dictionary.USER, n) for n in names
        ]


def test_engine_ids_are_stable_after_reopening(tmp_path, exported):
    config = EngineConfig(compaction=CompactionConfig(enabled=False))
    with Engine.open(tmp_path / "d", config) as e:
        ws = e.create_workspace("dict")
        tenant = e.authenticate(ws.keys.plx_live).tenant
        e.track_batch(tenant, [EventIn(user_id=u, event="e") for u in ("carol", "alice", "carol")])
        e.track(tenant, EventIn(user_id="bob", event="e"))
        before = _user_ids(e, tenant, ["carol", "alice", "bob"])
    # Dense from 0; the order within one batch is the writer's business.
    assert sorted(before) == [0, 1, 2] and before[2] == 2
    with Engine.open(tmp_path / "d", config) as e:
        assert _user_ids(e, tenant, ["carol", "alice", "bob"]) == before
        # The new writer's counter continues where the old one stopped.
        e.track_batch(tenant, [EventIn(user_id=u, event="e") for u in ("alice", "dave")])
        assert _user_ids(e, tenant, ["alice", "dave"]) == [before[1], 3]
        users = [r["user_id"] for r in exported(e, tenant)]
    assert sorted(users) == sorted(["carol", "alice", "carol", "bob", "alice", "dave"])


class _InternThenFail:
    def __init__(self, tenant, value):
        self.tenant, self.value = tenant, value

    def apply(self, ctx):
        ctx.interner.intern(ctx.txn, self.tenant.prefix, dictionary.USER, self.value)
        raise ValueError("fails after interning")


class _Intern:
    def __init__(self, tenant, value):
        self.tenant, self.value = tenant, value

    def apply(self, ctx):
        return ctx.interner.intern(ctx.txn, self.tenant.prefix, dictionary.USER, self.value)


class _Gate:
    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def apply(self, ctx):
        self.entered.set()
        self.release.wait(60)  # released by the test; the bound only ends a failed one


def test_a_failed_group_does_not_poison_the_writer_cache(engine, tenant):
    """A group whose transaction aborts after interning must not leave ids in the cache: the
    retried neighbours and every later operation get ids that match the committed dictionary."""
    gate = _Gate()
    engine.writer.submit(gate)
    assert gate.entered.wait(60)
    first = engine.writer.submit(_Intern(tenant, "a"))
    ghost = engine.writer.submit(_InternThenFail(tenant, "ghost"))
    second = engine.writer.submit(_Intern(tenant, "b"))
    gate.release.set()
    with pytest.raises(ValueError):
        ghost.result(60)
    assert (first.result(60), second.result(60)) == (0, 1)
    # Alone, too: the failing op's interning is rolled back.
    with pytest.raises(ValueError):
        engine.writer.run(_InternThenFail(tenant, "ghost2"))
    assert engine.writer.run(_Intern(tenant, "c")) == 2
    assert engine.writer.run(_Intern(tenant, "ghost")) == 3
    assert engine.writer.run(_Intern(tenant, "a")) == 0
    with engine.store.read() as txn:
        store = engine.store
        assert dictionary.lookup(txn, store, tenant.prefix, dictionary.USER, "ghost2") is None
        assert dictionary.strings(txn, store, tenant.prefix, dictionary.USER, range(6)) == {
            0: "a",
            1: "b",
            2: "c",
            3: "ghost",
        }
