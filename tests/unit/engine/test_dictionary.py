"""Interning: dense ids per tenant and kind, stable across reopening, unharmed by aborts."""

from __future__ import annotations

from engine import dictionary
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
    from engine import Engine

    with Engine.open(tmp_path / "d") as e:
        prefix = Tenant("ws_a", "live").prefix
        ids = _intern(e.store, Interner(e.store), prefix, dictionary.USER, ["a", "b"])
    with Engine.open(tmp_path / "d") as e:
        again = _intern(e.store, Interner(e.store), prefix, dictionary.USER, ["b", "a", "c"])
    assert again == [ids[1], ids[0], 2]
