"""Behavioural events: validation naming the field, timestamps, atomic batches, insert_id dedup."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

import engine.engine as engine_module
from engine import EventIn
from engine.config import EngineConfig
from engine.errors import BatchTooLarge, InvalidInput, MalformedJSON
from engine.events import check_batch_size, decode_batch, decode_event, prepare, prepare_batch
from engine.timeutil import now_us, to_us

CONFIG = EngineConfig()
RECEIVED = to_us(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
HOUR_US = 3600 * 1_000_000


def _body(**fields) -> bytes:
    fields.setdefault("user_id", "u")
    fields.setdefault("event", "e")
    return msgspec.json.encode(fields)


def _parse(iso: str) -> int:
    return to_us(datetime.fromisoformat(iso))


def _refused(call, field: str, error=InvalidInput):
    with pytest.raises(error) as info:
        call()
    assert info.value.field == field, info.value.message
    return info.value


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["user_id", "event", "insert_id", "request_id"])
@pytest.mark.parametrize("length", [0, 201])
def test_names_outside_1_to_200_characters_are_refused(name, length):
    error = _refused(lambda: decode_event(_body(**{name: "x" * length})), name)
    assert name in error.message


@pytest.mark.parametrize("name", ["user_id", "event"])
def test_names_are_required(name):
    fields = {"user_id": "u", "event": "e"}
    del fields[name]
    error = _refused(lambda: decode_event(msgspec.json.encode(fields)), name)
    assert "required" in error.message


@pytest.mark.parametrize("length", [1, 200])
def test_names_of_1_and_200_characters_are_accepted(engine, tenant, exported, length):
    value = "é" * length  # characters, not bytes
    event = decode_event(_body(user_id=value, event=value, insert_id=value, request_id=value))
    assert engine.track(tenant, event).stored == 1
    [row] = exported(engine, tenant)
    assert (row["user_id"], row["event"], row["insert_id"]) == (value, value, value)


def test_malformed_json_is_its_own_error():
    with pytest.raises(MalformedJSON):
        decode_event(b'{"user_id": "u", "event": ')
    with pytest.raises(InvalidInput) as info:
        decode_event(b'{"user_id": 5, "event": "e"}')
    assert info.value.field == "user_id"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (EventIn(user_id="", event="e"), "user_id"),
        (EventIn(user_id="u", event="x" * 201), "event"),
        (EventIn(user_id="u", event="e", insert_id="i" * 201), "insert_id"),
        (EventIn(user_id="u", event="e", properties=msgspec.Raw(b"{broken")), "properties"),
        (EventIn(user_id="u", event="e", properties=msgspec.Raw(b'{"a":"\xff"}')), "properties"),
    ],
)
def test_in_process_events_are_validated_like_decoded_ones(engine, tenant, exported, event, field):
    _refused(lambda: engine.track(tenant, event), field)
    _refused(
        lambda: engine.track_batch(tenant, [EventIn(user_id="u", event="ok"), event]),
        f"events[1].{field}",
    )
    assert exported(engine, tenant) == []
    assert engine.usage(tenant.workspace_id).events.live == 0


# -- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[1, 2], "text", 5, True])
def test_properties_must_be_an_object(value):
    event = decode_event(_body(properties=value))
    _refused(lambda: prepare(event, RECEIVED, CONFIG), "properties")


def _properties_of_size(n: int) -> bytes:
    raw = b'{"p":"' + b"x" * (n - 8) + b'"}'
    assert len(raw) == n
    return raw


def test_properties_up_to_32_kib_are_accepted_and_one_byte_more_is_refused():
    limit = CONFIG.max_properties_bytes
    assert limit == 32 * 1024
    fits = decode_event(
        b'{"user_id":"u","event":"e","properties":' + _properties_of_size(limit) + b"}"
    )
    assert prepare(fits, RECEIVED, CONFIG)[3] == _properties_of_size(limit)
    big = decode_event(
        b'{"user_id":"u","event":"e","properties":' + _properties_of_size(limit + 1) + b"}"
    )
    error = _refused(lambda: prepare(big, RECEIVED, CONFIG), "properties")
    assert str(limit) in error.message


def test_non_utf8_properties_are_refused(engine, tenant, exported):
    body = b'{"user_id":"u","event":"e","properties":{"name":"caf\xe9"}}'
    event = decode_event(body)
    _refused(lambda: engine.track(tenant, event), "properties")
    assert exported(engine, tenant) == []


def test_null_or_missing_properties_export_as_an_empty_object(engine, tenant, exported):
    engine.track(tenant, decode_event(b'{"user_id":"u","event":"a","properties":null}'))
    engine.track(tenant, decode_event(b'{"user_id":"u","event":"b"}'))
    engine.track(tenant, decode_event(b'{"user_id":"u","event":"c","properties":{"k":[1,{}]}}'))
    assert [r["properties"] for r in exported(engine, tenant)] == [{}, {}, {"k": [1, {}]}]


# -- timestamps ---------------------------------------------------------------------------


def test_default_timestamp_is_the_receive_time(engine, tenant, exported):
    before = time.time_ns() // 1000
    engine.track(tenant, EventIn(user_id="u", event="e"))
    after = time.time_ns() // 1000
    [row] = exported(engine, tenant)
    assert row["timestamp"] == row["received_at"]
    assert before <= _parse(row["timestamp"]) <= after
    assert prepare(EventIn(user_id="u", event="e"), RECEIVED, CONFIG)[0] == RECEIVED


def test_future_limit_is_24_hours_after_receipt():
    limit = RECEIVED + 24 * HOUR_US
    at_limit = EventIn(user_id="u", event="e", timestamp=datetime.fromtimestamp(limit / 1e6, UTC))
    assert prepare(at_limit, RECEIVED, CONFIG)[0] == limit
    beyond = EventIn(
        user_id="u",
        event="e",
        timestamp=datetime.fromtimestamp(limit / 1e6, UTC) + timedelta(microseconds=1),
    )
    _refused(lambda: prepare(beyond, RECEIVED, CONFIG), "timestamp")


def test_far_future_timestamp_is_refused_by_the_engine(engine, tenant, exported):
    event = EventIn(user_id="u", event="e", timestamp=datetime.now(UTC) + timedelta(hours=25))
    _refused(lambda: engine.track(tenant, event), "timestamp")
    assert exported(engine, tenant) == []
    assert engine.usage(tenant.workspace_id).events.live == 0


def test_timestamp_before_1970_is_refused():
    event = EventIn(user_id="u", event="e", timestamp=datetime(1969, 12, 31, 23, 59, tzinfo=UTC))
    _refused(lambda: prepare(event, RECEIVED, CONFIG), "timestamp")


def test_timestamps_with_offsets_and_without_zone_are_utc():
    local = datetime(2026, 3, 10, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 3, 10, 12, 0)
    for stamp in (local, naive):
        assert prepare(EventIn(user_id="u", event="e", timestamp=stamp), RECEIVED, CONFIG)[0] == (
            RECEIVED
        )
    event = decode_event(_body(timestamp="2026-03-10T13:30:00+01:30"))
    assert prepare(event, RECEIVED, CONFIG)[0] == RECEIVED


def test_sent_at_corrects_the_client_clock():
    # The client's clock runs 3 h ahead; the event happened 10 min before it was sent.
    client_ts = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    sent_at = client_ts + timedelta(minutes=10)
    event = EventIn(user_id="u", event="e", timestamp=client_ts, sent_at=sent_at)
    assert prepare(event, RECEIVED, CONFIG)[0] == RECEIVED - 10 * 60 * 1_000_000
    # A clock 30 h ahead would be refused without sent_at, and is corrected with it.
    far = datetime.fromtimestamp(RECEIVED / 1e6, UTC) + timedelta(hours=30)
    skewed = EventIn(user_id="u", event="e", timestamp=far, sent_at=far + timedelta(seconds=5))
    assert prepare(skewed, RECEIVED, CONFIG)[0] == RECEIVED - 5_000_000
    _refused(
        lambda: prepare(EventIn(user_id="u", event="e", timestamp=far), RECEIVED, CONFIG),
        "timestamp",
    )


def test_sent_at_through_the_engine(engine, tenant, exported):
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    engine.track(
        tenant,
        EventIn(user_id="u", event="e", timestamp=stamp, sent_at=stamp + timedelta(minutes=7)),
    )
    [row] = exported(engine, tenant)
    assert _parse(row["received_at"]) - _parse(row["timestamp"]) == 7 * 60 * 1_000_000


# -- batches ------------------------------------------------------------------------------


def test_batch_errors_name_the_event_and_its_field():
    rows = [_body(), _body(), _body(), _body(user_id="")]
    body = b'{"events":[' + b",".join(rows) + b"]}"
    _refused(lambda: decode_batch(body, CONFIG), "events[3].user_id")
    events = [EventIn(user_id="u", event="e") for _ in range(3)]
    events[2].properties = msgspec.Raw(b"[1]")
    _refused(lambda: prepare_batch(events, RECEIVED, CONFIG), "events[2].properties")
    events[2].properties = msgspec.Raw(b"{}")
    events[1].timestamp = datetime(2100, 1, 1, tzinfo=UTC)
    _refused(lambda: prepare_batch(events, RECEIVED, CONFIG), "events[1].timestamp")


def test_batch_sizes():
    one = [EventIn(user_id="u", event="e")]
    check_batch_size(one, CONFIG)
    check_batch_size(one * 500, CONFIG)
    error = _refused(lambda: check_batch_size([], CONFIG), "events")
    assert not isinstance(error, BatchTooLarge)
    error = _refused(lambda: check_batch_size(one * 501, CONFIG), "events", BatchTooLarge)
    assert error.code == "batch_too_large" and "501" in error.message
    _refused(lambda: decode_batch(b'{"events":[]}', CONFIG), "events")
    many = b'{"events":[' + b",".join([_body()] * 501) + b"]}"
    _refused(lambda: decode_batch(many, CONFIG), "events", BatchTooLarge)


def test_engine_batch_sizes(engine, tenant, exported):
    with pytest.raises(InvalidInput):
        engine.track_batch(tenant, [])
    with pytest.raises(BatchTooLarge):
        engine.track_batch(tenant, [EventIn(user_id="u", event="e") for _ in range(501)])
    assert exported(engine, tenant) == []
    result = engine.track_batch(tenant, [EventIn(user_id="u", event="e") for _ in range(500)])
    assert (result.accepted, result.stored) == (500, 500)


def test_a_batch_with_one_bad_event_stores_nothing(engine, tenant, exported):
    good = [
        EventIn(user_id=f"u{i}", event="e", insert_id=f"id-{i}", properties=msgspec.Raw(b"{}"))
        for i in range(5)
    ]
    bad = EventIn(user_id="x", event="e", properties=msgspec.Raw(b'"not an object"'))
    _refused(
        lambda: engine.track_batch(tenant, [*good[:3], bad, *good[3:]]), "events[3].properties"
    )
    assert exported(engine, tenant) == []
    assert engine.usage(tenant.workspace_id).events.live == 0
    # Nothing was remembered either: the same insert_ids are stored when sent again.
    result = engine.track_batch(tenant, good)
    assert (result.stored, result.deduplicated) == (5, 0)
    assert sorted(r["insert_id"] for r in exported(engine, tenant)) == [f"id-{i}" for i in range(5)]


def test_batch_keeps_the_order_of_equal_timestamps(engine, tenant, exported):
    stamp = datetime(2026, 2, 1, tzinfo=UTC)
    events = [EventIn(user_id="u", event=f"e{i}", timestamp=stamp) for i in range(20)]
    engine.track_batch(tenant, events)
    assert [r["event"] for r in exported(engine, tenant)] == [f"e{i}" for i in range(20)]


# -- insert_id deduplication --------------------------------------------------------------


def test_repeated_insert_id_is_acknowledged_but_stored_once(engine, tenant, exported):
    first = engine.track(tenant, EventIn(user_id="u", event="e", insert_id="a"))
    again = engine.track(tenant, EventIn(user_id="u", event="other", insert_id="a"))
    assert (first.accepted, first.stored, first.deduplicated) == (1, 1, 0)
    assert (again.accepted, again.stored, again.deduplicated) == (1, 0, 1)
    assert [r["event"] for r in exported(engine, tenant)] == ["e"]


def test_repeats_within_one_batch_are_stored_once(engine, tenant, exported):
    events = [
        EventIn(user_id="u", event=f"e{i}", insert_id=iid)
        for i, iid in enumerate(["a", "b", "a", None, "b", "a", None])
    ]
    result = engine.track_batch(tenant, events)
    assert (result.accepted, result.stored, result.deduplicated) == (7, 4, 3)
    assert [r["event"] for r in exported(engine, tenant)] == ["e0", "e1", "e3", "e6"]


def test_insert_ids_are_per_tenant(engine, tenant, exported):
    ws = engine.workspace(tenant.workspace_id)
    other = engine.create_workspace("other")
    test_tenant = type(tenant)(ws.id, "test")
    other_tenant = engine.authenticate(other.keys.plx_live).tenant
    for t in (tenant, test_tenant, other_tenant):
        assert engine.track(t, EventIn(user_id="u", event="e", insert_id="same")).stored == 1
    for t in (tenant, test_tenant, other_tenant):
        assert len(exported(engine, t)) == 1


def test_repeat_after_the_window_is_stored_again(open_engine, exported, monkeypatch):
    engine = open_engine(dedup_window_seconds=1)
    ws = engine.create_workspace("w")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    # The clock that stamps ingestion, moved by hand: the window is exactly one second of it,
    # however long the calls take.
    clock = now_us()
    monkeypatch.setattr(engine_module, "now_us", lambda: clock)

    def stored(event: str) -> int:
        return engine.track(tenant, EventIn(user_id="u", event=event, insert_id="x")).stored

    assert stored("first") == 1
    clock += 999_999
    assert stored("dup") == 0
    clock += 1
    assert stored("second") == 1
    # The window starts again from the second storing.
    clock += 999_999
    assert stored("dup2") == 0
    assert [r["event"] for r in exported(engine, tenant)] == ["first", "second"]
    assert engine.usage(ws.id).events.live == 2


def test_a_zero_window_stores_every_repeat(open_engine, exported):
    engine = open_engine(dedup_window_seconds=0)
    ws = engine.create_workspace("w")
    tenant = engine.authenticate(ws.keys.plx_live).tenant
    for _ in range(3):
        assert engine.track(tenant, EventIn(user_id="u", event="e", insert_id="x")).stored == 1
    assert len(exported(engine, tenant)) == 3
