"""Device API through HTTP (in-process ASGI): agent identification, events, visitors, deletion."""

from __future__ import annotations

import copy

import httpx
import msgspec
import pytest
from _device_support import CHROME_UA, COMPONENTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import ServerConfig, create_app
from engine import Engine, EngineConfig
from engine.segments import SCHEMAS, list_segments, read_columns


@pytest.fixture
def anyio_backend():
    return "asyncio"  # the engine's writer resolves asyncio futures


@pytest.fixture
def env(tmp_path):
    engine = Engine.open(tmp_path / "data", EngineConfig())
    ws = engine.create_workspace("device-tests", "enterprise")
    app = create_app(ServerConfig(), engine=engine)
    yield engine, ws, app
    engine.close()


async def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": CHROME_UA}


async def _identify(client, key, components=None, **extra):
    body = {"components": components or COMPONENTS, **extra}
    return await client.post("/v1/agent/identify", json=body, headers=_auth(key))


@pytest.mark.anyio
async def test_public_key_gets_short_answer_secret_key_full_document(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        r = await _identify(c, ws.keys.pk_live, linkedId="user_1", type="login")
        assert r.status_code == 200, r.text
        short = r.json()
        assert set(short) == {"requestId", "visitorId", "confidence", "visitorFound"}
        assert short["visitorId"].startswith("pv_") and short["requestId"].startswith("req_")
        assert short["visitorFound"] is False

        r = await _identify(c, ws.keys.sk_live)
        full = r.json()
        assert full["visitorId"] == short["visitorId"]
        assert full["visitorFound"] is True
        for field in ("device", "signals", "scores", "ip", "verdict", "matchedRule", "firstSeenAt"):
            assert field in full
        assert full["verdict"] is None and full["matchedRule"] is None
        assert full["device"]["browser"] == "Chrome 121"

        doc = (
            await c.get(f"/v1/events/{short['requestId']}", headers=_auth(ws.keys.sk_live))
        ).json()
        assert doc["requestId"] == short["requestId"]
        assert doc["linkedId"] == "user_1" and doc["event"]["type"] == "login"


@pytest.mark.anyio
async def test_same_device_without_cookie_and_after_update_keeps_visitor(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        first = (await _identify(c, ws.keys.pk_live)).json()
        # Cookies cleared: no stored id, same components.
        c.cookies.clear()
        again = (await _identify(c, ws.keys.pk_live)).json()
        assert again["visitorId"] == first["visitorId"]
        # Browser update: new major version in the UA and hints, new canvas rendering; the
        # stored id is kept across it.
        updated = copy.deepcopy(COMPONENTS)
        updated["userAgent"] = CHROME_UA.replace("121.0", "122.0")
        updated["clientHints"]["brands"][0]["version"] = "122"
        updated["canvas"] = "0000ffff0000ffff"
        ua = updated["userAgent"]
        body = {"components": updated, "storedVisitorId": first["visitorId"]}
        r = await c.post(
            "/v1/agent/identify",
            json=body,
            headers={"Authorization": f"Bearer {ws.keys.pk_live}", "User-Agent": ua},
        )
        assert r.json()["visitorId"] == first["visitorId"]
        assert r.json()["visitorFound"] is True
        # A different device: other GPU, fonts, canvas, audio, screen.
        other = copy.deepcopy(COMPONENTS)
        other.update(
            canvas="1111222233334444",
            audio="35.7",
            fonts=["Helvetica", "Menlo"],
            screen={"w": 2560, "h": 1440, "colorDepth": 30},
            webgl={"vendor": "Apple", "renderer": "Apple M3 Pro", "extensions": ["Z"]},
            math="ffffffffffffffff",
        )
        r = await _identify(c, ws.keys.pk_live, components=other)
        assert r.json()["visitorId"] != first["visitorId"]


@pytest.mark.anyio
async def test_the_servers_cookie_keeps_the_visitor_when_the_agents_storage_is_gone(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        r = await _identify(c, ws.keys.pk_live, storageId="s1")
        first = r.json()["visitorId"]
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"_spid={first}.s1;")
        for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=34560000"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain HTTP here
        # Safari deleted the agent's storage and the browser updated, re-rendering canvas and
        # audio: the body has no stored id. Without the server's cookie that is a new visitor...
        updated = copy.deepcopy(COMPONENTS)
        updated.update(userAgent=CHROME_UA.replace("121.0", "122.0"), canvas="0f0f", audio="9.9")
        headers = {**_auth(ws.keys.pk_live), "User-Agent": updated["userAgent"]}
        body = {"components": updated, "storageId": "s2"}
        c.cookies.clear()
        alone = (await c.post("/v1/agent/identify", json=body, headers=headers)).json()
        assert alone["visitorId"] != first
        # ... with it, the device keeps its visitor.
        c.cookies.clear()
        kept = await c.post(
            "/v1/agent/identify", json=body, headers={**headers, "Cookie": f"_spid={first}.s1"}
        )
        assert kept.json()["visitorId"] == first and kept.json()["visitorFound"] is True
        assert kept.headers["set-cookie"].startswith(f"_spid={first}.s1;")
        # A stored id in the body wins over the cookie; a malformed cookie is ignored.
        c.cookies.clear()
        both = await c.post(
            "/v1/agent/identify",
            json={**body, "storedVisitorId": alone["visitorId"]},
            headers={**headers, "Cookie": f"_spid={first}.s1"},
        )
        assert both.json()["visitorId"] == alone["visitorId"]
        for bad in ("_spid=not-an-id", "_spid=pv_x.s;s", "_spid=", "junk"):
            c.cookies.clear()
            r = await c.post("/v1/agent/identify", json=body, headers={**headers, "Cookie": bad})
            assert r.status_code == 200
        # A secret key (a server relaying a payload) gets no cookie.
        c.cookies.clear()
        secret = await _identify(c, ws.keys.sk_live)
        assert "set-cookie" not in secret.headers


@pytest.mark.anyio
async def test_stored_id_that_disagrees_with_the_device_is_ignored(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        mine = (await _identify(c, ws.keys.pk_live)).json()["visitorId"]
        other = copy.deepcopy(COMPONENTS)
        other.update(canvas="aa", audio="1", fonts=["X"], math="m", webgl={"renderer": "R"})
        r = await _identify(c, ws.keys.pk_live, components=other, storedVisitorId=mine)
        assert r.json()["visitorId"] != mine


@pytest.mark.anyio
async def test_list_events_pages_with_stable_cursor(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        ids = [(await _identify(c, ws.keys.pk_live)).json()["requestId"] for _ in range(5)]
        h = _auth(ws.keys.sk_live)
        page1 = (await c.get("/v1/events?limit=2", headers=h)).json()
        assert [e["requestId"] for e in page1["data"]] == ids[::-1][:2]
        assert page1["hasMore"] is True
        # New events arriving between pages must not shift the next page.
        await _identify(c, ws.keys.pk_live)
        page2 = (await c.get(f"/v1/events?limit=2&cursor={page1['nextCursor']}", headers=h)).json()
        assert [e["requestId"] for e in page2["data"]] == ids[::-1][2:4]
        page3 = (await c.get(f"/v1/events?limit=2&cursor={page2['nextCursor']}", headers=h)).json()
        assert [e["requestId"] for e in page3["data"]] == ids[:1]
        assert page3["hasMore"] is False
        bots = (await c.get("/v1/events?bot=true", headers=h)).json()
        assert bots["data"] == []


@pytest.mark.anyio
async def test_visitor_document_and_its_events(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        vid = (await _identify(c, ws.keys.pk_live, linkedId="acct_1")).json()["visitorId"]
        await _identify(c, ws.keys.pk_live, linkedId="acct_2")
        h = _auth(ws.keys.sk_live)
        v = (await c.get(f"/v1/visitors/{vid}", headers=h)).json()
        assert v["visitorId"] == vid and v["totalVisits"] == 2 and v["linkedAccounts"] == 2
        assert v["devices"][0]["browser"] == "Chrome 121"
        evs = (await c.get(f"/v1/visitors/{vid}/events?limit=1", headers=h)).json()
        assert len(evs["data"]) == 1 and evs["hasMore"] is True


@pytest.mark.anyio
async def test_delete_visitor_removes_everything_and_recycles_the_id(env, tmp_path):
    engine, ws, app = env
    async with await _client(app) as c:
        first = (await _identify(c, ws.keys.pk_live)).json()
        vid, rid = first["visitorId"], first["requestId"]
        h = _auth(ws.keys.sk_live)
        r = await c.delete(f"/v1/visitors/{vid}", headers=h)
        assert r.status_code == 200 and r.json() == {"deleted": True, "visitorId": vid}
        assert (await c.get(f"/v1/events/{rid}", headers=h)).status_code == 404
        assert (await c.get(f"/v1/visitors/{vid}", headers=h)).status_code == 404
        assert (await c.get("/v1/events", headers=h)).json()["data"] == []
        assert (await c.delete(f"/v1/visitors/{vid}", headers=h)).status_code == 404
        # The same device now gets a new visitor id.
        again = (await _identify(c, ws.keys.pk_live, storedVisitorId=vid)).json()
        assert again["visitorId"] != vid and again["visitorFound"] is False
    # Physically gone after compaction: no stored byte carries the deleted ids.
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    engine.compact(tenant)
    with engine.store.env.begin() as txn:
        for name, db in engine.store.dbs.items():
            for key, value in txn.cursor(db=db):
                assert vid.encode() not in key and vid.encode() not in value, name
                assert rid.encode() not in key and rid.encode() not in value, name
        segs = list_segments(txn, engine.store, tenant.prefix, "identifications")
        total = sum(m.rows for _, m in segs)
        rows = [
            read_columns(
                txn, engine.store, tenant.prefix, "identifications", n, SCHEMAS["identifications"]
            )
            for n, _ in segs
        ]
    assert total == 1  # only the re-identification remains
    assert all(rid.encode() not in col["request"].data for col in rows)


@pytest.mark.anyio
async def test_bad_input_is_a_clear_4xx_and_stores_nothing(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        h = _auth(ws.keys.pk_live)
        cases = [
            (b"{", "invalid_json"),
            (b'{"components": 5}', "validation_error"),
            (b'{"components": {"screen": {"w": -1}}}', "validation_error"),
            (b'{"linkedId": ""}', "validation_error"),
        ]
        for body, code in cases:
            r = await c.post("/v1/agent/identify", content=body, headers=h)
            assert r.status_code == 400, body
            assert r.json()["error"]["code"] == code
        r = await c.post("/v1/agent/identify", content=b"x" * (1024 * 1024 + 1), headers=h)
        assert r.status_code == 413
        sk = _auth(ws.keys.sk_live)
        assert (await c.get("/v1/events", headers=sk)).json()["data"] == []
        assert (await c.get("/v1/events", headers=h)).status_code == 403
        assert (await c.get("/v1/events/req_nope", headers=sk)).status_code == 404
        assert (await c.get("/v1/visitors/pv_nope", headers=sk)).status_code == 404
        bad_queries = (
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("verdict=maybe", "verdict"),
            ("bot=yes", "bot"),
            ("before=notadate", "before"),
            ("cursor=garbage", "cursor"),
        )
        for query, field in bad_queries:
            r = await c.get(f"/v1/events?{query}", headers=sk)
            assert r.status_code == 400, query
            assert r.json()["error"]["field"] == field


@pytest.mark.anyio
async def test_forged_forwarded_for_is_ignored_and_flagged_as_proxy(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        headers = {**_auth(ws.keys.sk_live), "X-Forwarded-For": "8.8.8.8"}
        r = await c.post("/v1/agent/identify", json={"components": COMPONENTS}, headers=headers)
        doc = r.json()
        assert doc["ip"]["address"] != "8.8.8.8"
        assert doc["signals"]["proxy"] is True


@pytest.mark.anyio
async def test_mobile_fields_only_from_secret_keys(env):
    _engine, ws, app = env
    mobile = {"os": "Android", "emulator": True, "rooted": True, "clonedApp": True}
    async with await _client(app) as c:
        short = (await _identify(c, ws.keys.pk_live, mobile=mobile)).json()
        doc = (
            await c.get(f"/v1/events/{short['requestId']}", headers=_auth(ws.keys.sk_live))
        ).json()
        assert doc["signals"]["emulator"] is False and doc["signals"]["rootedDevice"] is False
        full = (await _identify(c, ws.keys.sk_live, mobile=mobile)).json()
        assert (
            full["signals"]["emulator"]
            and full["signals"]["rootedDevice"]
            and full["signals"]["clonedApp"]
        )


@pytest.mark.anyio
async def test_environments_do_not_share_visitors(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        live = (await _identify(c, ws.keys.pk_live)).json()
        test = (await _identify(c, ws.keys.pk_test)).json()
        assert test["visitorFound"] is False and test["visitorId"] != live["visitorId"]
        r = await c.get(f"/v1/events/{live['requestId']}", headers=_auth(ws.keys.sk_test))
        assert r.status_code == 404
        r = await c.get(f"/v1/visitors/{live['visitorId']}", headers=_auth(ws.keys.sk_test))
        assert r.status_code == 404


def test_agent_js_and_demo_are_served(env):
    _engine, _ws, app = env
    import asyncio

    async def fetch():
        async with await _client(app) as c:
            js = await c.get("/agent.js")
            demo = await c.get("/demo")
            return js, demo

    js, demo = asyncio.run(fetch())
    assert (
        js.status_code == 200
        and "Signalpost" in js.text
        and "javascript" in js.headers["content-type"]
    )
    assert demo.status_code == 200 and "/agent.js" in demo.text


def test_msgspec_roundtrip_of_documents(env):
    engine, ws, _app = env
    from engine.device import AgentRequest

    tenant = engine.authenticate(ws.keys.sk_live).tenant
    event = engine.identify_device(
        tenant, msgspec.convert({"components": COMPONENTS}, AgentRequest), client_ip="8.8.8.8"
    )
    stored = msgspec.json.decode(engine.event_document(tenant, event.requestId))
    assert stored == msgspec.json.decode(msgspec.json.encode(event))
    assert stored["ip"]["country"] == "US"


@pytest.mark.anyio
async def test_analytics_events_with_a_request_id_link_the_user_to_the_visitor(env):
    _engine, ws, app = env
    async with await _client(app) as c:
        answer = (await _identify(c, ws.keys.pk_live)).json()
        for user in ("usr_a", "usr_a", "usr_b"):
            event = {"user_id": user, "event": "signed_in", "request_id": answer["requestId"]}
            r = await c.post("/v1/events", json=event, headers=_auth(ws.keys.pk_live))
            assert r.status_code == 200
        unknown = {"user_id": "usr_c", "event": "x", "request_id": "req_unknown"}
        assert (
            await c.post("/v1/events", json=unknown, headers=_auth(ws.keys.pk_live))
        ).status_code == 200
        v = await c.get(f"/v1/visitors/{answer['visitorId']}", headers=_auth(ws.keys.sk_live))
        assert v.json()["linkedAccounts"] == 2


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_component_names = st.sampled_from(
    ["userAgent", "screen", "webgl", "fonts", "storage", "automation", "clientHints",
     "hardwareConcurrency", "deviceMemory", "canvas", "timezone", "languages", "mobile"]
)  # fmt: skip


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(_component_names, _json_values, max_size=6).map(
            lambda c: msgspec.json.encode({"components": c})
        ),
        st.dictionaries(st.sampled_from(["components", "linkedId", "type", "tag", "mobile",
                                         "storedVisitorId"]), _json_values, max_size=4).map(
            msgspec.json.encode
        ),
    )
)  # fmt: skip
def test_no_agent_payload_gets_a_5xx(env, body):
    import asyncio

    _engine, ws, app = env

    async def send():
        async with await _client(app) as c:
            for key in (ws.keys.pk_live, ws.keys.sk_live):
                r = await c.post("/v1/agent/identify", content=body, headers=_auth(key))
                assert r.status_code < 500, r.text
                if r.status_code >= 400:
                    assert set(r.json()["error"]) >= {"code", "message", "docs"}

    asyncio.run(send())
