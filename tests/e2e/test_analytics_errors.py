"""Analytics API errors through HTTP: one error body everywhere, the right status and field, and
nothing stored by a refused request. Ends with a hypothesis fuzz of the two ingestion endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from _analytics_support import MISSING, assert_error
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

WRITE_PATHS = ("/v1/events", "/v1/events/batch", "/v1/identify")
READ_PATHS = ("/v1/usage", "/v1/export")
VALID_BODY = {
    "/v1/events": {"user_id": "u", "event": "e"},
    "/v1/events/batch": {"events": [{"user_id": "u", "event": "e"}]},
    "/v1/identify": {"user_id": "u", "traits": {"a": 1}},
}
LIMIT = 1024 * 1024
IN_TWO_DAYS = (datetime.now(UTC) + timedelta(days=2)).isoformat()


def _call(api, path: str, headers: dict[str, str]):
    if path in VALID_BODY:
        return api.post(path, headers=headers, json=VALID_BODY[path])
    return api.get(path, headers=headers)


def assert_nothing_stored(stack) -> None:
    usage = stack.engine.usage(stack.ws.id)
    assert (usage.events.live, usage.events.test) == (0, 0), usage
    for key in (stack.ws.keys.sk_live, stack.ws.keys.sk_test):
        assert stack.api.export(key) == []


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS + READ_PATHS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token plx_live_abc",
        "Bearer plx_live_not-a-real-key",
        "Bearer sk_live_",
        "plx_live_abc",
    ],
)
def test_missing_invalid_or_malformed_authorization_is_401(stack, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_error(_call(stack.api, path, headers), 401, "invalid_api_key")
    assert_nothing_stored(stack)


@pytest.mark.parametrize("path", WRITE_PATHS + READ_PATHS)
def test_revoked_keys_are_401_and_the_bearer_scheme_is_case_insensitive(stack, path):
    api, engine, ws = stack.api, stack.engine, stack.ws
    assert _call(api, path, {"Authorization": f"bearer {ws.keys.sk_live}"}).status_code == 200
    engine.rotate_keys(ws.id)
    for old in (ws.keys.plx_live, ws.keys.sk_test, ws.keys.pk_live):
        assert_error(_call(api, path, {"Authorization": f"Bearer {old}"}), 401, "invalid_api_key")


@pytest.mark.parametrize("path", READ_PATHS)
@pytest.mark.parametrize("kind", ["pk_live", "pk_test"])
def test_public_keys_are_forbidden_on_read_endpoints(stack, path, kind):
    key = getattr(stack.ws.keys, kind)
    r = stack.api.get(path, key=key, params={"format": "parquet"} if path == "/v1/export" else {})
    assert_error(r, 403, "forbidden")


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_an_invalid_key_wins_over_an_invalid_body(stack, path):
    r = stack.api.post(path, key="plx_live_nope", content=b"{not json")
    assert_error(r, 401, "invalid_api_key")


# -- malformed bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "invalid_json"),
        (b'{"user_id": "u", "event": "e",}', "invalid_json"),
        (b"not json at all", "invalid_json"),
        (b"\xff\xfe\x00{", "invalid_json"),
        (b"[]", "validation_error"),
        (b'[{"user_id": "u", "event": "e"}]', "validation_error"),
        (b'"a string"', "validation_error"),
        (b"42", "validation_error"),
        (b"null", "validation_error"),
        (b"", "validation_error"),
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(stack, path, body, code):
    r = stack.api.post(
        path, key=stack.ws.keys.plx_live, content=body, headers={"content-type": "application/json"}
    )
    assert_error(r, 400, code)
    assert_nothing_stored(stack)


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize(
    "spoil",
    [
        lambda body: body + b" trailing",
        lambda body: body + b"{}",
        lambda body: body.replace(b'"u"', b'"u\xff\xfe"'),
        lambda body: body.replace(b'"u"', b'"u\xc3"'),
        lambda body: body.replace(b'"u"', b'"u\x00"'),
        lambda body: body[:-1],
    ],
    ids=["trailing-text", "second-document", "invalid-utf8", "truncated-utf8", "raw-nul", "cut"],
)
def test_spoiled_valid_bodies_are_invalid_json(stack, path, spoil):
    body = spoil(json.dumps(VALID_BODY[path]).encode())
    r = stack.api.post(path, key=stack.ws.keys.plx_live, content=body)
    assert_error(r, 400, "invalid_json")
    assert_nothing_stored(stack)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/events", {"event": "e"}, "user_id"),
        ("/v1/events", {"user_id": "u"}, "event"),
        ("/v1/events", {"user_id": 123, "event": "e"}, "user_id"),
        ("/v1/events", {"user_id": "u", "event": ["e"]}, "event"),
        ("/v1/events", {"user_id": "", "event": "e"}, "user_id"),
        ("/v1/events", {"user_id": "u" * 201, "event": "e"}, "user_id"),
        ("/v1/events", {"user_id": "u", "event": "e", "timestamp": 1736950920}, "timestamp"),
        ("/v1/events", {"user_id": "u", "event": "e", "timestamp": "yesterday"}, "timestamp"),
        ("/v1/events", {"user_id": "u", "event": "e", "timestamp": "2026-01-15"}, "timestamp"),
        (
            "/v1/events",
            {"user_id": "u", "event": "e", "timestamp": "1969-12-31T23:59:59Z"},
            "timestamp",
        ),
        ("/v1/events", {"user_id": "u", "event": "e", "sent_at": "soon"}, "sent_at"),
        ("/v1/events", {"user_id": "u", "event": "e", "insert_id": 7}, "insert_id"),
        ("/v1/events", {"user_id": "u", "event": "e", "insert_id": ""}, "insert_id"),
        ("/v1/events", {"user_id": "u", "event": "e", "request_id": ["r"]}, "request_id"),
        ("/v1/events/batch", {}, "events"),
        ("/v1/events/batch", {"events": []}, "events"),
        ("/v1/events/batch", {"events": "all"}, "events"),
        ("/v1/events/batch", {"events": {"user_id": "u", "event": "e"}}, "events"),
        ("/v1/events/batch", {"events": [1]}, "events[0]"),
        ("/v1/events/batch", {"events": [{"user_id": "u", "event": "e"}, {}]}, "events[1].user_id"),
        ("/v1/identify", {}, "user_id"),
        ("/v1/identify", {"user_id": 5}, "user_id"),
        ("/v1/identify", {"user_id": "u", "traits": []}, "traits"),
        ("/v1/identify", {"user_id": "u", "traits": "plan=growth"}, "traits"),
        ("/v1/identify", {"user_id": "u", "set_once": 1}, "set_once"),
        ("/v1/identify", {"user_id": "u", "unset": "plan"}, "unset"),
        ("/v1/identify", {"user_id": "u", "unset": [""]}, "unset[0]"),
    ],
)
def test_wrong_types_are_400_with_the_field(stack, path, body, field):
    r = stack.api.post(path, key=stack.ws.keys.plx_live, json=body)
    assert_error(r, 400, "validation_error", field=field)
    assert_nothing_stored(stack)


def test_batch_of_501_is_batch_too_large(stack):
    events = [{"user_id": f"u{i}", "event": "e"} for i in range(501)]
    r = stack.api.batch(stack.ws.keys.plx_live, events)
    error = assert_error(r, 400, "batch_too_large", field="events")
    assert "500" in error["message"]
    assert_nothing_stored(stack)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"user_id": "u"}, "events[17].event"),
        ({"user_id": "u", "event": ""}, "events[17].event"),
        ({"user_id": "u", "event": 17}, "events[17].event"),
        ({"user_id": "u", "event": "e", "properties": [1]}, "events[17].properties"),
        ({"user_id": "u", "event": "e", "timestamp": IN_TWO_DAYS}, "events[17].timestamp"),
        (
            {"user_id": "u", "event": "e", "timestamp": "1900-01-01T00:00:00Z"},
            "events[17].timestamp",
        ),
    ],
)
def test_one_invalid_event_refuses_the_whole_batch(stack, bad, field):
    events: list[dict[str, Any]] = [
        {"user_id": f"u{i}", "event": "ok", "insert_id": f"i{i}"} for i in range(40)
    ]
    events[17] = bad
    assert_error(stack.api.batch(stack.ws.keys.plx_live, events), 400, "validation_error", field)
    assert_nothing_stored(stack)
    # The refused batch left no dedup trace: its good events can be sent again and are stored.
    events[17] = {"user_id": "u17", "event": "ok"}
    r = stack.api.batch(stack.ws.keys.plx_live, events)
    assert r.json() == {"accepted": 40, "stored": 40, "deduplicated": 0}


# -- timestamps and properties -----------------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(hours=24, minutes=1), timedelta(days=400)])
def test_timestamp_more_than_24h_ahead_is_refused(stack, ahead):
    when = (datetime.now(UTC) + ahead).isoformat()
    r = stack.api.event(stack.ws.keys.plx_live, timestamp=when)
    error = assert_error(r, 400, "validation_error", field="timestamp")
    assert "future" in error["message"]
    # Offsets count: a wall-clock time 30 h ahead in UTC-06:00 is far in the future.
    far = datetime.now(timezone(timedelta(hours=-6))) + timedelta(hours=30)
    r = stack.api.event(stack.ws.keys.plx_live, timestamp=far.isoformat())
    assert_error(r, 400, "validation_error", field="timestamp")
    assert_nothing_stored(stack)


@pytest.mark.parametrize("props", ["csv", ["csv"], 1450, True, 1.5])
def test_properties_must_be_an_object(stack, props):
    r = stack.api.event(stack.ws.keys.plx_live, properties=props)
    assert_error(r, 400, "validation_error", field="properties")
    r = stack.api.batch(
        stack.ws.keys.plx_live,
        [{"user_id": "u", "event": "e"}, {"user_id": "u", "event": "e", "properties": props}],
    )
    assert_error(r, 400, "validation_error", field="events[1].properties")
    assert_nothing_stored(stack)


def _properties_of_size(size: int) -> bytes:
    head = b'{"pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_properties_up_to_32kb_are_accepted_and_larger_refused(stack):
    api, key = stack.api, stack.ws.keys.plx_live
    exact = _properties_of_size(32 * 1024)
    assert len(exact) == 32768
    body = b'{"user_id":"u","event":"e","properties":' + exact + b"}"
    assert api.post("/v1/events", key=key, content=body).status_code == 200
    over = b'{"user_id":"u","event":"e","properties":' + _properties_of_size(32769) + b"}"
    assert_error(
        api.post("/v1/events", key=key, content=over), 400, "validation_error", "properties"
    )
    (row,) = api.export(key)
    assert len(row["properties"]["pad"]) == 32768 - 10


def test_traits_over_32kb_are_refused(stack):
    big = {"pad": "x" * (32 * 1024)}
    for name in ("traits", "set_once"):
        r = stack.api.post(
            "/v1/identify", key=stack.ws.keys.plx_live, json={"user_id": "u", name: big}
        )
        assert_error(r, 400, "validation_error", field=name)


# -- body size ---------------------------------------------------------------------------------


def _padded(path: str, size: int) -> bytes:
    body = json.dumps(VALID_BODY[path]).encode()
    return body + b" " * (size - len(body))


async def _chunks(body: bytes, size: int = 64 * 1024):
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_body_of_exactly_1mb_is_accepted(stack, path):
    api, key = stack.api, stack.ws.keys.plx_live
    r = api.post(path, key=key, content=_padded(path, LIMIT))
    assert r.status_code == 200, r.text
    r = api.post(path, key=key, content=_chunks(_padded(path, LIMIT)))
    assert r.status_code == 200, r.text
    assert "content-length" not in r.request.headers


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_body_over_1mb_with_content_length_is_413(stack, path, size):
    r = stack.api.post(path, key=stack.ws.keys.plx_live, content=_padded(path, size))
    assert r.request.headers["content-length"] == str(size)
    assert_error(r, 413, "payload_too_large")
    assert_nothing_stored(stack)


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_body_over_1mb_chunked_is_413(stack, path, size):
    r = stack.api.post(path, key=stack.ws.keys.plx_live, content=_chunks(_padded(path, size)))
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_error(r, 413, "payload_too_large")
    assert_nothing_stored(stack)


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_a_lying_content_length_is_refused(stack, path):
    api, key = stack.api, stack.ws.keys.plx_live
    # A small declared length does not let a large body through.
    r = api.post(path, key=key, content=_padded(path, LIMIT + 10), headers={"content-length": "10"})
    assert_error(r, 413, "payload_too_large")
    r = api.post(path, key=key, content=b"{}", headers={"content-length": "two"})
    assert_error(r, 400, "validation_error")
    assert_nothing_stored(stack)


# -- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/nope"),
        ("GET", "/v1"),
        ("POST", "/v1/event"),
        ("POST", "/v1/events/batch/extra"),
        ("GET", "/v2/usage"),
        ("DELETE", "/v1/nothing/here"),
    ],
)
def test_unknown_path_is_404_with_the_error_body(stack, method, path):
    r = stack.api.request(method, path, key=stack.ws.keys.sk_live)
    assert_error(r, 404, "not_found")


METHOD_NOT_ALLOWED = [
    ("GET", "/v1/identify"),
    ("PUT", "/v1/events/batch"),
    ("DELETE", "/v1/events/batch"),
    ("PUT", "/v1/events"),
    ("POST", "/v1/usage"),
    ("DELETE", "/v1/usage"),
    ("POST", "/v1/export"),
    ("POST", "/healthz"),
    ("PUT", "/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), METHOD_NOT_ALLOWED)
def test_wrong_method_is_405_with_the_error_body(stack, method, path):
    r = stack.api.request(method, path, key=stack.ws.keys.sk_live)
    assert_error(r, 405, "method_not_allowed")
    assert_nothing_stored(stack)


@pytest.mark.parametrize(("method", "path"), METHOD_NOT_ALLOWED[:3])
def test_405_names_the_allowed_methods(stack, method, path):
    r = stack.api.request(method, path, key=stack.ws.keys.sk_live)
    assert r.status_code == 405
    assert "allow" in r.headers


# -- input the decoder cannot take --------------------------------------------------------------

DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/events", b'{"user_id":"u","event":"e","properties":{"a":' + DEEP + b"}}"),
        (
            "/v1/events/batch",
            b'{"events":[{"user_id":"u","event":"e","properties":{"a":' + DEEP + b"}}]}",
        ),
        ("/v1/identify", b'{"user_id":"u","traits":{"a":' + DEEP + b"}}"),
    ],
    ids=["event", "batch", "identify"],
)
def test_deeply_nested_json_is_400_not_500(stack, path, body):
    r = stack.api.post(path, key=stack.ws.keys.plx_live, content=body)
    assert r.status_code == 400, r.text
    assert_error(r, 400, r.json()["error"]["code"])
    assert_nothing_stored(stack)


@pytest.mark.parametrize("value", [10**30, -(10**30)])
@pytest.mark.parametrize("name", ["traits", "set_once"])
def test_trait_integers_beyond_64_bits_are_400_not_500(stack, name, value):
    body = {"user_id": "u", name: {"big": value}}
    r = stack.api.post("/v1/identify", key=stack.ws.keys.plx_live, json=body)
    assert_error(r, 400, "validation_error", field=name)


# -- fuzz --------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_instants = st.datetimes(
    min_value=datetime(1960, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
    ),
).map(lambda d: d.isoformat())
_names = st.one_of(st.text(max_size=210), st.integers(), st.none(), st.just(""))
_now = datetime.now(UTC).replace(tzinfo=None)
_recent = st.datetimes(
    min_value=_now - timedelta(days=3650),
    max_value=_now + timedelta(days=2),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
).map(lambda d: d.isoformat())
_properties = st.dictionaries(st.text(max_size=8), _json_values, max_size=4)
# Mostly valid events, so that the fuzz also stores things...
_good_events = st.fixed_dictionaries(
    {"user_id": st.text(min_size=1, max_size=12), "event": st.sampled_from(["a", "b", "c"])},
    optional={
        "timestamp": _recent,
        "sent_at": _recent,
        "properties": _properties,
        "insert_id": st.text(min_size=1, max_size=3),
        "request_id": st.text(min_size=1, max_size=12),
        "extra": _json_values,
    },
)
# ... and events where any field may hold anything.
_wild_events = st.fixed_dictionaries(
    {},
    optional={
        "user_id": st.one_of(st.text(min_size=1, max_size=12), _names),
        "event": st.one_of(st.sampled_from(["signed_up", "export_created"]), _names),
        "timestamp": st.one_of(_instants, _json_values),
        "sent_at": st.one_of(_instants, _json_values),
        "properties": st.one_of(_properties, _json_values),
        "insert_id": st.one_of(st.text(min_size=1, max_size=6), _names),
        "request_id": _names,
    },
)
_events = st.one_of(_good_events, _wild_events)
_bodies = st.one_of(
    st.binary(max_size=300),
    _json_values.map(lambda v: json.dumps(v).encode()),
    _events.map(lambda v: json.dumps(v).encode()),
    st.lists(_events, max_size=4).map(lambda v: json.dumps({"events": v}).encode()),
    st.lists(_good_events, min_size=1, max_size=8).map(
        lambda v: json.dumps({"events": v}).encode()
    ),
    st.lists(_events, max_size=4).map(lambda v: json.dumps(v).encode()),
    # Valid JSON with a byte changed somewhere.
    st.tuples(
        _events.map(lambda v: json.dumps(v).encode()), st.integers(0, 1000), st.integers(0, 255)
    ).map(
        lambda t: (
            t[0][: t[1] % max(1, len(t[0]))] + bytes([t[2]]) + t[0][t[1] % max(1, len(t[0])) + 1 :]
        )
    ),
)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(["/v1/events", "/v1/events/batch"]), body=_bodies)
def test_fuzz_ingestion_never_5xx_and_stores_nothing_when_refused(stack, path, body):
    before = stack.engine.usage(stack.ws.id).events.live
    r = stack.api.post(path, key=stack.ws.keys.plx_live, content=body)
    assert r.status_code < 500, (r.status_code, r.text, body)
    event(f"{path} answered {r.status_code}")
    after = stack.engine.usage(stack.ws.id).events.live
    if r.status_code == 200:
        answer = r.json()
        assert answer["stored"] + answer["deduplicated"] == answer["accepted"]
        assert after - before == answer["stored"]
    else:
        error = assert_error(
            r, r.status_code, r.json()["error"]["code"], r.json()["error"].get("field", MISSING)
        )
        assert r.status_code in (400, 413), error
        assert after == before, (body, r.text)
    assert len(stack.api.export(stack.ws.keys.sk_live)) == after
