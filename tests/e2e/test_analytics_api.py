"""Analytics API through HTTP (in-process ASGI over a real engine): ingestion, identify, export,
insert_id deduplication, clock-skew correction, usage and tenant isolation."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import polars as pl

from engine.tenant import Tenant

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def at(seconds: float) -> str:
    return iso(T0 + timedelta(seconds=seconds))


# -- ingestion happy paths ---------------------------------------------------------------------


def test_single_event_is_stored_and_exported_as_sent(stack):
    api, keys = stack.api, stack.ws.keys
    sent = datetime.now(UTC)
    r = api.post(
        "/v1/events",
        key=keys.plx_live,
        json={
            "user_id": "usr_abc123",
            "event": "export_created",
            "timestamp": "2026-01-15T14:22:00Z",
            "properties": {"format": "csv", "row_count": 1450},
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"accepted": 1, "stored": 1, "deduplicated": 0}

    (row,) = api.export(keys.sk_live)
    assert row["user_id"] == "usr_abc123"
    assert row["event"] == "export_created"
    assert row["timestamp"] == "2026-01-15T14:22:00Z"
    assert row["properties"] == {"format": "csv", "row_count": 1450}
    assert "insert_id" not in row and "request_id" not in row
    received = parse(row["received_at"])
    assert sent - timedelta(seconds=1) <= received <= datetime.now(UTC) + timedelta(seconds=1)


def test_event_without_timestamp_gets_the_receive_time_and_empty_properties(stack):
    api, keys = stack.api, stack.ws.keys
    before = datetime.now(UTC)
    assert api.event(keys.plx_live).json() == {"accepted": 1, "stored": 1, "deduplicated": 0}
    after = datetime.now(UTC)
    (row,) = api.export(keys.plx_live)
    assert row["properties"] == {}
    assert row["timestamp"] == row["received_at"]
    assert before - timedelta(seconds=1) <= parse(row["timestamp"]) <= after + timedelta(seconds=1)


def test_event_keeps_insert_id_and_request_id(stack):
    api, keys = stack.api, stack.ws.keys
    r = api.event(keys.plx_live, insert_id="ins-1", request_id="req_abc", timestamp=at(0))
    assert r.status_code == 200, r.text
    (row,) = api.export(keys.plx_live)
    assert row["insert_id"] == "ins-1"
    assert row["request_id"] == "req_abc"


def test_batch_is_stored_whole(stack):
    api, keys = stack.api, stack.ws.keys
    events = [
        {"user_id": "usr_abc", "event": "dashboard_viewed", "timestamp": at(1)},
        {
            "user_id": "usr_def",
            "event": "filter_applied",
            "timestamp": at(2),
            "properties": {"a": 1},
        },
        {"user_id": "usr_abc", "event": "filter_applied", "timestamp": at(3)},
    ]
    r = api.batch(keys.plx_live, events)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "stored": 3, "deduplicated": 0}
    rows = api.export(keys.plx_live)
    assert [(e["user_id"], e["event"]) for e in rows] == [
        ("usr_abc", "dashboard_viewed"),
        ("usr_def", "filter_applied"),
        ("usr_abc", "filter_applied"),
    ]
    assert rows[1]["properties"] == {"a": 1}
    # One receive time for the whole batch: it was stored in one piece.
    assert len({e["received_at"] for e in rows}) == 1


def test_batch_of_exactly_500_is_accepted(stack):
    api, keys = stack.api, stack.ws.keys
    events = [{"user_id": f"u{i}", "event": "e", "timestamp": at(i)} for i in range(500)]
    r = api.batch(keys.plx_live, events)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 500, "stored": 500, "deduplicated": 0}
    assert len(api.export(keys.plx_live)) == 500


def test_public_keys_may_write_on_all_three_write_endpoints(stack):
    api, keys = stack.api, stack.ws.keys
    for key in (keys.pk_live, keys.pk_test):
        assert api.event(key, timestamp=at(0)).status_code == 200
        assert api.batch(key, [{"user_id": "u", "event": "b"}]).status_code == 200
        r = api.post("/v1/identify", key=key, json={"user_id": "u", "traits": {"k": key[:7]}})
        assert r.status_code == 200, r.text
    assert len(api.export(keys.sk_live)) == 2
    assert len(api.export(keys.sk_test)) == 2
    live = stack.engine.profile(Tenant(stack.ws.id, "live"), "u")
    test = stack.engine.profile(Tenant(stack.ws.id, "test"), "u")
    assert live.traits == {"k": "pk_live"}
    assert test.traits == {"k": "pk_test"}


def test_identify_merges_traits_set_once_and_unset(stack):
    api, keys = stack.api, stack.ws.keys
    r = api.post(
        "/v1/identify",
        key=keys.plx_live,
        json={
            "user_id": "usr_abc123",
            "traits": {"email": "[email protected]", "plan": "growth", "signup_date": "2025-11-03"},
            "set_once": {"first_source": "ads"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": "usr_abc123",
        "traits": {
            "email": "[email protected]",
            "plan": "growth",
            "signup_date": "2025-11-03",
            "first_source": "ads",
        },
    }
    r = api.post(
        "/v1/identify",
        key=keys.sk_live,
        json={
            "user_id": "usr_abc123",
            "traits": {"plan": "scale", "seats": 12},
            "set_once": {"first_source": "organic", "first_plan": "growth"},
            "unset": ["signup_date"],
        },
    )
    assert r.status_code == 200, r.text
    expected = {
        "email": "[email protected]",
        "plan": "scale",
        "seats": 12,
        "first_source": "ads",
        "first_plan": "growth",
    }
    assert r.json() == {"user_id": "usr_abc123", "traits": expected}
    # Durable and readable in-process; identify stores no event.
    assert stack.engine.profile(Tenant(stack.ws.id, "live"), "usr_abc123").traits == expected
    assert api.export(keys.sk_live) == []
    assert api.usage(keys.sk_live)["events"] == {"live": 0, "test": 0}


# -- export ------------------------------------------------------------------------------------


def test_export_is_in_timestamp_order_whatever_the_arrival_order(stack):
    api, keys = stack.api, stack.ws.keys
    offsets = [5, 1, 9, 3, 7, 0, 8, 2, 6, 4]
    for n, offset in enumerate(offsets[:4]):
        assert api.event(keys.plx_live, user_id=f"s{n}", timestamp=at(offset)).status_code == 200
    batch = [{"user_id": f"b{o}", "event": "e", "timestamp": at(o)} for o in offsets[4:]]
    assert api.batch(keys.plx_live, batch).status_code == 200
    rows = api.export(keys.plx_live)
    assert [r["timestamp"] for r in rows] == [at(o) for o in sorted(offsets)]


def test_export_from_is_inclusive_and_to_exclusive(stack):
    api, keys = stack.api, stack.ws.keys
    events = [{"user_id": "u", "event": f"e{i}", "timestamp": at(i)} for i in range(5)]
    assert api.batch(keys.plx_live, events).status_code == 200

    def names(**params):
        return [r["event"] for r in api.export(keys.plx_live, **params)]

    assert names() == ["e0", "e1", "e2", "e3", "e4"]
    assert names(**{"from": at(1), "to": at(3)}) == ["e1", "e2"]
    assert names(**{"from": at(1)}) == ["e1", "e2", "e3", "e4"]
    assert names(to=at(1)) == ["e0"]
    assert names(**{"from": at(2), "to": at(2)}) == []
    assert names(**{"from": at(4), "to": at(4.000001)}) == ["e4"]
    # Offsets and dates without a time are understood; naive times are UTC.
    assert names(**{"from": "2025-06-01T14:00:01+02:00", "to": "2025-06-01T12:00:03"}) == [
        "e1",
        "e2",
    ]
    assert names(**{"from": "2025-06-01", "to": "2025-06-02"}) == ["e0", "e1", "e2", "e3", "e4"]
    assert names(**{"from": "2025-06-02"}) == []


def test_export_parquet_matches_ndjson(stack):
    api, keys = stack.api, stack.ws.keys
    events = [
        {"user_id": "u2", "event": "b", "timestamp": at(2), "insert_id": "i2"},
        {"user_id": "u1", "event": "a", "timestamp": at(1), "properties": {"x": [1, 2]}},
        {"user_id": "u3", "event": "c", "timestamp": at(3), "request_id": "req_3"},
    ]
    assert api.batch(keys.plx_live, events).status_code == 200
    r = api.get("/v1/export", key=keys.sk_live, params={"format": "parquet"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pl.read_parquet(io.BytesIO(r.content))
    assert frame.columns == [
        "user_id",
        "event",
        "timestamp",
        "properties",
        "received_at",
        "insert_id",
        "request_id",
    ]
    assert frame["user_id"].to_list() == ["u1", "u2", "u3"]
    assert frame["event"].to_list() == ["a", "b", "c"]
    assert frame["timestamp"].to_list() == [T0 + timedelta(seconds=s) for s in (1, 2, 3)]
    assert frame["insert_id"].to_list() == [None, "i2", None]
    assert frame["request_id"].to_list() == [None, None, "req_3"]
    assert frame["properties"].to_list()[0].replace(" ", "") == '{"x":[1,2]}'

    # The range applies to Parquet too, and an empty range is still a readable file.
    r = api.get("/v1/export", key=keys.sk_live, params={"format": "parquet", "from": at(2)})
    assert pl.read_parquet(io.BytesIO(r.content))["event"].to_list() == ["b", "c"]
    r = api.get("/v1/export", key=keys.sk_test, params={"format": "parquet"})
    assert r.status_code == 200
    empty = pl.read_parquet(io.BytesIO(r.content))
    assert empty.height == 0 and "user_id" in empty.columns


def test_export_of_an_empty_environment_is_empty(stack):
    r = stack.api.get("/v1/export", key=stack.ws.keys.sk_live)
    assert r.status_code == 200
    assert r.content == b""


# -- insert_id deduplication -------------------------------------------------------------------


def test_insert_id_repeats_are_acknowledged_but_stored_once(stack):
    api, keys = stack.api, stack.ws.keys
    first = api.event(keys.plx_live, insert_id="dup-1", timestamp=at(0))
    assert first.json() == {"accepted": 1, "stored": 1, "deduplicated": 0}
    again = api.event(keys.plx_live, insert_id="dup-1", timestamp=at(5), event="other")
    assert again.status_code == 200
    assert again.json() == {"accepted": 1, "stored": 0, "deduplicated": 1}
    r = api.batch(
        keys.sk_live,
        [
            {"user_id": "u", "event": "e", "insert_id": "dup-1"},
            {"user_id": "u", "event": "e", "insert_id": "dup-2"},
            {"user_id": "u", "event": "e", "insert_id": "dup-2"},
            {"user_id": "u", "event": "e"},
        ],
    )
    assert r.json() == {"accepted": 4, "stored": 2, "deduplicated": 2}
    rows = api.export(keys.plx_live)
    assert sorted(r.get("insert_id", "-") for r in rows) == ["-", "dup-1", "dup-2"]
    (first_row,) = [r for r in rows if r.get("insert_id") == "dup-1"]
    assert first_row["event"] == "e" and first_row["timestamp"] == at(0)  # the first one wins
    # Usage counts stored events, not acknowledged repeats.
    assert api.usage(keys.sk_live)["events"]["live"] == 3


def test_events_without_insert_id_are_never_deduplicated(stack):
    api, keys = stack.api, stack.ws.keys
    for _ in range(3):
        assert api.event(keys.plx_live, timestamp=at(0)).json()["stored"] == 1
    assert len(api.export(keys.plx_live)) == 3


def test_insert_id_dedup_is_per_environment_and_per_workspace(stack):
    api, keys = stack.api, stack.ws.keys
    other = stack.engine.create_workspace("other", "enterprise").keys
    for key in (keys.plx_live, keys.plx_test, other.plx_live, other.plx_test):
        assert api.event(key, insert_id="same").json() == {
            "accepted": 1,
            "stored": 1,
            "deduplicated": 0,
        }
    for key in (keys.plx_live, keys.plx_test, other.plx_live, other.plx_test):
        assert len(api.export(key)) == 1


# -- clock skew --------------------------------------------------------------------------------


def test_sent_at_corrects_a_slow_client_clock(stack):
    api, keys = stack.api, stack.ws.keys
    client_now = datetime.now(UTC) - timedelta(days=3)  # the device's clock is 3 days behind
    r = api.event(
        keys.plx_live,
        timestamp=iso(client_now - timedelta(minutes=10)),
        sent_at=iso(client_now),
    )
    assert r.status_code == 200, r.text
    (row,) = api.export(keys.plx_live)
    age = parse(row["received_at"]) - parse(row["timestamp"])
    assert timedelta(minutes=10) - timedelta(seconds=2) < age <= timedelta(minutes=10)


def test_sent_at_accepts_an_event_from_a_fast_client_clock(stack):
    api, keys = stack.api, stack.ws.keys
    client_now = datetime.now(UTC) + timedelta(days=2)  # 2 days ahead: raw time is "future"
    fields = {"timestamp": iso(client_now - timedelta(minutes=5))}
    r = api.event(keys.plx_live, **fields)
    assert r.status_code == 400 and r.json()["error"]["field"] == "timestamp"
    r = api.event(keys.plx_live, **fields, sent_at=iso(client_now))
    assert r.status_code == 200, r.text
    (row,) = api.export(keys.plx_live)
    age = parse(row["received_at"]) - parse(row["timestamp"])
    assert timedelta(minutes=5) - timedelta(seconds=2) < age <= timedelta(minutes=5)


def test_sent_at_applies_to_each_event_of_a_batch(stack):
    api, keys = stack.api, stack.ws.keys
    client_now = datetime.now(UTC) - timedelta(hours=7)
    events = [
        {"user_id": "u", "event": f"e{m}", "timestamp": iso(client_now - timedelta(minutes=m))}
        for m in (30, 20, 10)
    ]
    for e in events:
        e["sent_at"] = iso(client_now)
    assert api.batch(keys.plx_live, events).status_code == 200
    rows = api.export(keys.plx_live)
    assert [r["event"] for r in rows] == ["e30", "e20", "e10"]
    for row, minutes in zip(rows, (30, 20, 10), strict=True):
        age = parse(row["received_at"]) - parse(row["timestamp"])
        assert abs(age - timedelta(minutes=minutes)) < timedelta(seconds=2)


def test_timestamp_just_under_24h_ahead_is_accepted(stack):
    api, keys = stack.api, stack.ws.keys
    r = api.event(keys.plx_live, timestamp=iso(datetime.now(UTC) + timedelta(hours=23)))
    assert r.status_code == 200, r.text


# -- usage -------------------------------------------------------------------------------------


def test_usage_counts_live_and_test_separately_and_bills_only_live(stack):
    api, keys, ws = stack.api, stack.ws.keys, stack.ws
    fresh = api.usage(keys.sk_live)
    now = datetime.now(UTC)
    assert fresh == {
        "workspace_id": ws.id,
        "period": now.strftime("%Y-%m"),
        "period_start": now.strftime("%Y-%m-01T00:00:00Z"),
        "billable_events": 0,
        "events": {"live": 0, "test": 0},
        "rate_limited_requests": 0,
    }
    for key in (keys.plx_live, keys.sk_live, keys.pk_live):
        assert api.event(key).status_code == 200
    batch = [{"user_id": "u", "event": "e"}] * 4
    assert api.batch(keys.plx_test, batch).status_code == 200
    assert api.event(keys.pk_test).status_code == 200
    assert api.event(keys.sk_test).status_code == 200

    for key in (keys.plx_live, keys.sk_live, keys.plx_test, keys.sk_test):
        usage = api.usage(key)
        assert usage["workspace_id"] == ws.id
        assert usage["events"] == {"live": 3, "test": 6}
        assert usage["billable_events"] == 3


def test_usage_counts_stored_events_in_the_month_they_were_received(stack):
    api, keys = stack.api, stack.ws.keys
    assert api.event(keys.plx_live, timestamp="2020-01-01T00:00:00Z").status_code == 200
    assert (
        api.event(keys.plx_live, timestamp="2020-01-01T00:00:00Z", insert_id="x").status_code == 200
    )
    assert api.event(keys.plx_live, insert_id="x").json()["stored"] == 0
    usage = api.usage(keys.sk_live)
    assert usage["events"]["live"] == 2
    assert usage["billable_events"] == 2


# -- isolation ---------------------------------------------------------------------------------


def test_workspaces_and_environments_never_see_each_other(stack):
    api, engine = stack.api, stack.engine
    a = stack.ws.keys
    b = engine.create_workspace("b", "enterprise").keys
    sent = {
        (a.plx_live, "a-live"): 1,
        (a.plx_test, "a-test"): 2,
        (b.plx_live, "b-live"): 3,
        (b.plx_test, "b-test"): 4,
    }
    for (key, name), n in sent.items():
        # The same user id in every tenant: interned per workspace, never shared.
        events = [{"user_id": "shared_user", "event": name, "timestamp": at(i)} for i in range(n)]
        assert api.batch(key, events).status_code == 200
    readers = {
        "a-live": (a.plx_live, a.sk_live),
        "a-test": (a.plx_test, a.sk_test),
        "b-live": (b.plx_live, b.sk_live),
        "b-test": (b.plx_test, b.sk_test),
    }
    for name, tenant_keys in readers.items():
        for key in tenant_keys:
            rows = api.export(key)
            assert {r["event"] for r in rows} == {name}, (name, rows)
            assert {r["user_id"] for r in rows} == {"shared_user"}
            r = api.get("/v1/export", key=key, params={"format": "parquet"})
            assert set(pl.read_parquet(io.BytesIO(r.content))["event"].to_list()) == {name}
    ua, ub = api.usage(a.sk_live), api.usage(b.sk_test)
    assert ua["workspace_id"] != ub["workspace_id"]
    assert ua["events"] == {"live": 1, "test": 2} and ua["billable_events"] == 1
    assert ub["events"] == {"live": 3, "test": 4} and ub["billable_events"] == 3


def test_identify_profiles_are_isolated_per_tenant(stack):
    api, engine, ws = stack.api, stack.engine, stack.ws
    other = engine.create_workspace("other", "enterprise")
    for key, value in ((ws.keys.sk_live, 1), (ws.keys.sk_test, 2), (other.keys.sk_live, 3)):
        r = api.post("/v1/identify", key=key, json={"user_id": "u", "traits": {"n": value}})
        assert r.json() == {"user_id": "u", "traits": {"n": value}}
    assert engine.profile(Tenant(ws.id, "live"), "u").traits == {"n": 1}
    assert engine.profile(Tenant(ws.id, "test"), "u").traits == {"n": 2}
    assert engine.profile(Tenant(other.id, "live"), "u").traits == {"n": 3}
