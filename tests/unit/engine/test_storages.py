"""Browser storages: a second persistent browser answered one visitor's id is told apart, a
private window or a cleared storage never is."""

from __future__ import annotations

import msgspec
from _devices import DESKTOP
from hypothesis import given
from hypothesis import strategies as st

from engine import storages
from engine.device import AgentRequest
from engine.matching import Features
from engine.visitor_records import Storage, VisitorRecord

HOME = "203.0.113.7"


def identify(engine, tenant, stored: str | None, storage: str, at_us: int):
    request = msgspec.convert(
        {"components": DESKTOP, "storedVisitorId": stored, "storageId": storage}, AgentRequest
    )
    return engine.identify_device(
        tenant, request, client_ip=HOME, header_ua=DESKTOP["userAgent"], at_us=at_us
    )


def record(*seen: tuple[str, int, int]) -> VisitorRecord:
    return VisitorRecord(
        id="pv_x", first_seen_us=0, last_seen_us=0, total=0, features=Features({}, []),
        exact=None, bands=[], devices=[], linked=[], ips=[],
        storages=[Storage(*s) for s in seen],
    )  # fmt: skip


T = 1_790_000_000_000_000  # an instant in 2026
HOUR = 3_600_000_000


def test_a_look_alike_answered_another_devices_id_gets_its_own_once_both_are_seen(engine, tenant):
    first = identify(engine, tenant, None, "A", T)
    # A look-alike in the same household: nothing tells it apart on its first visit.
    twin = identify(engine, tenant, None, "B", T + HOUR)
    assert twin.visitorId == first.visitorId
    # The first device comes back with its storage, then the look-alike with its own: two
    # storages in use at once are two browsers.
    assert identify(engine, tenant, first.visitorId, "A", T + 2 * HOUR).visitorId == first.visitorId
    apart = identify(engine, tenant, twin.visitorId, "B", T + 3 * HOUR)
    assert apart.visitorId != first.visitorId
    assert identify(engine, tenant, apart.visitorId, "B", T + 4 * HOUR).visitorId == apart.visitorId
    assert identify(engine, tenant, first.visitorId, "A", T + 5 * HOUR).visitorId == first.visitorId


def test_a_private_window_or_cleared_storage_never_splits_a_visitor(engine, tenant):
    first = identify(engine, tenant, None, "A", T)
    private = identify(engine, tenant, None, "P", T + HOUR)  # gone when the window closes
    assert private.visitorId == first.visitorId
    assert identify(engine, tenant, first.visitorId, "A", T + 2 * HOUR).visitorId == first.visitorId
    # Site data cleared: storage A is gone for good, C holds the visitor from now on.
    cleared = identify(engine, tenant, None, "C", T + 3 * HOUR)
    assert cleared.visitorId == first.visitorId
    for hour in range(4, 8):
        again = identify(engine, tenant, first.visitorId, "C", T + hour * HOUR)
        assert again.visitorId == first.visitorId and again.visitorFound


def test_an_agent_without_a_storage_id_keeps_its_stored_visitor(engine, tenant):
    first = identify(engine, tenant, None, "A", T)
    request = msgspec.convert({"components": DESKTOP, "storedVisitorId": first.visitorId},
                              AgentRequest)  # fmt: skip
    again = engine.identify_device(
        tenant, request, client_ip=HOME, header_ua=DESKTOP["userAgent"], at_us=T + HOUR
    )
    assert again.visitorId == first.visitorId


def test_contested_only_when_an_older_storage_was_seen_after_this_one_began():
    assert not storages.contested(record(("A", 1, 5)), None)
    assert not storages.contested(record(("A", 1, 5)), "unknown")
    assert not storages.contested(record(("A", 1, 5), ("B", 6, 6)), "B")  # A not seen since
    assert storages.contested(record(("A", 1, 7), ("B", 6, 6)), "B")
    assert not storages.contested(record(("A", 1, 7), ("B", 6, 6)), "A")  # the older one keeps


@given(st.lists(st.tuples(st.sampled_from("ABCDEFGHIJKL"), st.integers(0, 10**6)), max_size=60))
def test_remember_keeps_the_oldest_storage_and_the_latest_others(visits):
    rec = record()
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    now = 0
    for storage, step in visits:
        now += step
        storages.remember(rec, storage, now)
        first.setdefault(storage, now)
        last[storage] = now
    kept = {s.id: s for s in rec.storages}
    assert len(rec.storages) == len(kept) <= storages.MAX_STORAGES
    if visits:
        assert visits[0][0] in kept  # the oldest storage is never dropped
        assert visits[-1][0] in kept
    for s in rec.storages:
        assert s.last_us == last[s.id]
        assert s.first_us >= first[s.id]  # a dropped storage seen again starts afresh
