"""Which visitor a device is: evidence weighed by how common it is, and counts kept exact."""

from __future__ import annotations

from collections import Counter

import msgspec
from _devices import DESKTOP, PHONE, components
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import calibration, linkage, matching
from engine.device import AgentRequest, Components
from engine.population import Population
from engine.visitor_index import counted_keys
from engine.visitor_records import decode_record


def identify(engine, tenant, comps: dict, ip: str, stored: str | None = None):
    request = msgspec.convert({"components": comps, "storedVisitorId": stored}, AgentRequest)
    return engine.identify_device(tenant, request, client_ip=ip, header_ua=comps["userAgent"])


def feats(base: dict, **changes: object) -> matching.Features:
    return matching.features(msgspec.convert(components(base, **changes), Components))


def test_drift_is_cheap_for_updates_and_dear_for_another_device():
    same = feats(DESKTOP)
    assert linkage.drift(same, same) == 1.0
    rerendered = feats(DESKTOP, canvas="beef")
    updated = feats(DESKTOP, canvas="beef", userAgent=DESKTOP["userAgent"].replace("121", "122"))
    assert linkage.drift(updated, same) > linkage.drift(rerendered, same)
    font_pack = feats(DESKTOP, fonts=[*DESKTOP["fonts"], "Cambria", "Calibri", "Consolas"])
    other_fonts = feats(DESKTOP, fonts=["Cambria", "Calibri", "Consolas"])
    assert linkage.drift(font_pack, same) > linkage.drift(other_fonts, same)
    assert linkage.same_device(updated, same)
    assert not linkage.same_device(feats(PHONE), same)


def test_a_unique_device_back_without_its_stored_id_keeps_its_visitor(engine, tenant):
    first = identify(engine, tenant, DESKTOP, "203.0.113.7")
    again = identify(engine, tenant, DESKTOP, "203.0.113.7")
    assert again.visitorFound and again.visitorId == first.visitorId
    assert 0.0 < again.confidence <= 1.0


def test_look_alike_phones_in_two_places_never_share_a_visitor(engine, tenant):
    berlin = identify(engine, tenant, PHONE, "198.51.100.1")
    new_york = identify(
        engine, tenant, components(PHONE, languages=["en-US"], timezone="America/New_York"),
        "192.0.2.50",
    )  # fmt: skip
    assert not new_york.visitorFound and new_york.visitorId != berlin.visitorId


def test_a_phone_like_many_others_from_a_new_address_gets_a_new_visitor(engine, tenant):
    ids = {identify(engine, tenant, PHONE, f"198.51.100.{n}").visitorId for n in range(1, 5)}
    # Nothing tells these phones apart: every one is answered as new, never as another.
    assert len(ids) == 4
    stranger = identify(engine, tenant, PHONE, "192.0.2.200")
    assert not stranger.visitorFound and stranger.visitorId not in ids
    assert stranger.confidence < 1.0


def test_a_stored_id_survives_drift_but_not_another_device(engine, tenant):
    first = identify(engine, tenant, DESKTOP, "203.0.113.7")
    drifted = components(
        DESKTOP, canvas="beef", timezone="Asia/Tokyo",
        userAgent=DESKTOP["userAgent"].replace("121", "122"),
    )  # fmt: skip
    kept = identify(engine, tenant, drifted, "192.0.2.9", stored=first.visitorId)
    assert kept.visitorId == first.visitorId
    copied = identify(engine, tenant, PHONE, "192.0.2.9", stored=first.visitorId)
    assert copied.visitorId != first.visitorId


def _recount(engine, tenant) -> tuple[int, Counter]:
    visitors, counts = 0, Counter()
    prefix, db = tenant.prefix, engine.store.visitors
    head = b"V" + prefix
    with engine.store.read() as txn, txn.cursor(db=db) as cur:
        if cur.set_range(head):
            for key, raw in cur:
                if not key.startswith(head):
                    break
                if key.endswith(b"\x01"):
                    record = decode_record(raw)
                    visitors += 1
                    counts.update(counted_keys(matching.keys(record.features)))
    return visitors, counts


_VARIANTS = st.sampled_from(
    [
        {},
        {"canvas": "beef"},
        {"languages": ["fr-FR"]},
        {"timezone": "Asia/Tokyo"},
        {"fonts": ["Arial"]},
        {"userAgent": DESKTOP["userAgent"].replace("121", "122"), "audio": "1.0"},
    ]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["identify", "delete"]), _VARIANTS, st.integers(0, 3)),
        min_size=1,
        max_size=20,
    )
)
def test_population_counts_equal_a_recount_of_the_visitors(engine, steps):
    tenant = engine.authenticate(engine.create_workspace("counts").keys.sk_live).tenant
    seen: list[str] = []
    for action, changes, pick in steps:
        if action == "delete" and seen:
            engine.delete_visitor(tenant, seen.pop(pick % len(seen)))
        else:
            event = identify(engine, tenant, components(DESKTOP, **changes), f"10.0.0.{pick}")
            if event.visitorId not in seen:
                seen.append(event.visitorId)
    visitors, expected = _recount(engine, tenant)
    head = b"F" + tenant.prefix
    with engine.store.read() as txn, txn.cursor(db=engine.store.visitors) as cur:
        assert Population(txn, engine.store.visitors, tenant.prefix).visitors() == visitors
        stored = {}
        if cur.set_range(head):
            for key, raw in cur:
                if not key.startswith(head):
                    break
                if key != head + b"#":
                    kind, digest = key[len(head) : len(head) + 1], key[len(head) + 1 :]
                    stored[(kind, digest)] = int.from_bytes(raw, "little")
    assert stored == dict(expected)


def test_calibrated_confidence_is_a_share_of_the_bin_or_the_raw_probability():
    for (path, phone), (edges, shares) in calibration.TABLE.items():
        assert list(edges) == sorted(edges) and len(shares) == len(edges) + 1
        for index, share in enumerate(shares):
            raw = (([0.0, *edges])[index] + ([*edges, 1.0])[index]) / 2
            expected = raw if share is None else share
            assert calibration.calibrated(path, phone, raw) == expected
            assert 0.0 <= calibration.calibrated(path, phone, raw) <= 1.0


def test_a_screen_the_device_showed_before_is_no_change():
    laptop, docked = feats(DESKTOP), feats(DESKTOP, screen={"w": 2560, "h": 1440, "colorDepth": 24})
    screens = linkage.remember_screen([], laptop, docked)
    assert screens == [laptop.values["screen"]]
    assert linkage.drift(laptop, docked, screens=screens) == 1.0
    assert linkage.drift(laptop, docked) == linkage.DRIFT["screen"]
    # Back on the laptop's panel: the monitor is remembered, the panel is not listed twice.
    assert linkage.remember_screen(screens, docked, laptop) == [docked.values["screen"]]


def test_a_laptop_back_on_its_monitor_without_its_stored_id_keeps_its_visitor(engine, tenant):
    monitor = components(DESKTOP, screen={"w": 2560, "h": 1440, "colorDepth": 24})
    first = identify(engine, tenant, DESKTOP, "203.0.113.7")
    docked = identify(engine, tenant, monitor, "203.0.113.7", stored=first.visitorId)
    assert docked.visitorId == first.visitorId
    identify(engine, tenant, DESKTOP, "203.0.113.7", stored=first.visitorId)
    # Cookies cleared, docked again, from another network: the monitor is no change.
    back = identify(engine, tenant, monitor, "192.0.2.9")
    assert back.visitorFound and back.visitorId == first.visitorId


def test_brave_keeps_its_stored_id_across_farbled_sessions(engine, tenant):
    hints = {
        "brands": [{"brand": "Brave", "version": "121"}, {"brand": "Chromium", "version": "121"}]
    }
    first = identify(engine, tenant, components(DESKTOP, clientHints=hints), "203.0.113.7")
    # A new session draws new canvas, audio, plugins and core count.
    farbled = components(
        DESKTOP, clientHints=hints, canvas="f00d", audio="99.1", hardwareConcurrency=3,
        plugins=["Chrome PDF Viewer", "a1b2c3"],
    )  # fmt: skip
    again = identify(engine, tenant, farbled, "192.0.2.9", stored=first.visitorId)
    assert again.visitorFound and again.visitorId == first.visitorId
