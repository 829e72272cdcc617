"""The outbox against a plain model: entries committed in any interleaving of enqueues (some
rolled back), partial takes into the delivery book and drops below the mark are each taken
exactly once, the sequence never goes back, and nothing untaken is dropped."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import EngineConfig, attempts, delivery_book, outbox
from engine.store import Store, prefixed

PREFIX = b"ws_0000000000000000\x00L\x00"
ENDPOINTS = [PREFIX + f"slk_{i:012x}".encode() for i in range(3)]  # Slack: never "gone"

_op = st.one_of(
    # enqueue n deliveries to one endpoint in one transaction, committed or rolled back
    st.tuples(st.just("enqueue"), st.integers(1, 4), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("take"), st.integers(1, 5)),  # copy at most n entries into the book
    st.tuples(st.just("drop"), st.integers(1, 6)),  # drop at most n entries below the mark
)


def _take(store: Store, limit: int) -> list[bytes]:
    """What a worker's turn does with the outbox, `limit` entries at a time."""
    with store.write_book() as txn, store.read() as main:
        entries, upto = outbox.read_new(main, store, delivery_book.mark(txn, store), limit)
        if entries:
            attempts.take_new(txn, store, attempts.Endpoints(main, store), entries, upto)
    return [e.msg_id for e in entries]


def _drop(store: Store, limit: int) -> int:
    with store.read_book() as txn:
        mark = delivery_book.mark(txn, store)
    txn = store.begin_write()
    dropped = outbox.DropTaken(mark, limit).apply(SimpleNamespace(txn=txn, store=store))
    txn.commit()
    return dropped


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(_op, max_size=40))
def test_every_committed_entry_is_taken_exactly_once(tmp_path_factory, ops):
    store = Store(tmp_path_factory.mktemp("outbox"), EngineConfig())
    committed: list[bytes] = []
    taken: list[bytes] = []
    try:
        for op in ops:
            if op[0] == "enqueue":
                _, n, endpoint, commit = op
                txn = store.begin_write()
                ids = [
                    outbox.enqueue(txn, store, ENDPOINTS[endpoint], "slack", "rule_match",
                                   b'{"text":"x"}', 1_800_000_000_000_000 + i, "https://h/x")
                    for i in range(n)
                ]  # fmt: skip
                if commit:
                    txn.commit()
                    committed += [i.encode() for i in ids]
                else:
                    txn.abort()
            elif op[0] == "take":
                taken += _take(store, op[1])
            else:
                _drop(store, op[1])
            with store.read() as main:
                # Numbers never go back: the highest entry is never dropped.
                assert outbox.last_seq(main, store) == len(committed)
        while batch := _take(store, 3):
            taken += batch
        # Taken in commit order, each once; what a rollback wrote was never seen.
        assert taken == committed
        with store.read_book() as txn:
            booked = [k for k, _ in prefixed(txn, store.book, b"D")]
            queued = [k for k, _ in prefixed(txn, store.book, b"Q")]
        assert sorted(k[-28:] for k in booked) == sorted(committed)
        assert len(queued) == len(committed)
        while _drop(store, 4):
            pass
        with store.read() as main:
            left = [k for k, _ in prefixed(main, store.webhooks, b"I")]
        assert len(left) == (1 if committed else 0)
    finally:
        store.close()
