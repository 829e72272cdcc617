"""Rules through HTTP: the device document's examples give the documented verdicts."""

from __future__ import annotations

import copy

import httpx
import pytest
from _device_support import CHROME_UA, COMPONENTS

from api import ServerConfig, create_app
from engine import Engine

BLOCK_BOT_REGISTRATIONS = {
    "name": "Block Bot Registrations",
    "priority": 1,
    "status": "live",
    "conditions": {
        "operator": "AND",
        "rules": [
            {"field": "signals.bot.detected", "operator": "equals", "value": True},
            {"field": "event.type", "operator": "equals", "value": "registration"},
        ],
    },
    "action": {
        "verdict": "block",
        "sideEffects": [{"type": "addToList", "list": "blocked_devices"}],
    },
}
CHALLENGE_RISKY_LOGINS = {
    "name": "Challenge High-Risk Logins",
    "priority": 2,
    "status": "live",
    "conditions": {
        "operator": "OR",
        "rules": [
            {"field": "signals.vpn.detected", "operator": "equals", "value": True},
            {"field": "signals.tor", "operator": "equals", "value": True},
            {"field": "velocity.distinctIps24h", "operator": "gte", "value": 5},
        ],
    },
    "action": {"verdict": "challenge"},
}
BOT = {**COMPONENTS, "automation": {"webdriver": True}, "canvas": "bot-canvas"}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def env(tmp_path):
    engine = Engine.open(tmp_path / "data")
    ws = engine.create_workspace("rules", "enterprise")
    yield engine, ws, create_app(ServerConfig(), engine=engine)
    engine.close()


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": CHROME_UA}


async def _identify(c, key, components, **extra):
    r = await c.post(
        "/v1/agent/identify", json={"components": components, **extra}, headers=_h(key)
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.anyio
async def test_document_examples_give_documented_verdicts(env):
    _e, ws, app = env
    sk = ws.keys.sk_live
    async with _client(app) as c:
        before = await _identify(c, sk, COMPONENTS)
        assert before["verdict"] is None and before["matchedRule"] is None  # no rules yet
        await c.post(
            "/v1/lists", json={"name": "blocked_devices", "type": "visitor"}, headers=_h(sk)
        )
        r = await c.post("/v1/rules", json=BLOCK_BOT_REGISTRATIONS, headers=_h(sk))
        assert r.status_code == 201, r.text
        written = r.json()
        assert written["propagated"] is True and written["propagationMs"] >= 0
        r = await c.post("/v1/rules", json=CHALLENGE_RISKY_LOGINS, headers=_h(sk))
        assert r.status_code == 201, r.text

        bot = await _identify(c, sk, BOT, type="registration")
        assert bot["verdict"] == "block"
        assert bot["matchedRule"] == {
            "id": written["id"],
            "name": "Block Bot Registrations",
            "priority": 1,
        }
        visitor = (await c.get(f"/v1/visitors/{bot['visitorId']}", headers=_h(sk))).json()
        assert visitor["lists"] == ["blocked_devices"]

        bot_login = await _identify(c, sk, BOT, type="login")
        assert bot_login["verdict"] == "allow"  # not a registration; no VPN from loopback
        vpn = copy.deepcopy(COMPONENTS)
        r = await c.post(
            "/v1/agent/identify",
            json={"components": vpn, "type": "login"},
            headers={**_h(sk), "X-Forwarded-For": "1.2.3.4"},
        )
        assert r.json()["verdict"] == "allow"  # proxy is not in the rule

        detail = (await c.get(f"/v1/rules/{written['id']}", headers=_h(sk))).json()
        assert detail["stats"]["matchCount"] == 1 and detail["stats"]["lastMatchAt"]
        listed = (await c.get("/v1/rules?status=live", headers=_h(sk))).json()
        assert [x["name"] for x in listed["data"]] == [
            "Block Bot Registrations",
            "Challenge High-Risk Logins",
        ]
        assert listed["data"][1]["conditions"] == {"operator": "OR", "count": 3}
        events = (await c.get("/v1/events?verdict=block", headers=_h(sk))).json()["data"]
        assert [e["requestId"] for e in events] == [bot["requestId"]]


@pytest.mark.anyio
async def test_monitor_counts_without_changing_the_verdict_and_paused_rules_do_nothing(env):
    _e, ws, app = env
    sk = ws.keys.sk_live
    rule = {
        "name": "Watch desktops",
        "status": "monitor",
        "conditions": {"field": "device.type", "operator": "equals", "value": "desktop"},
        "action": {"verdict": "block"},
    }
    async with _client(app) as c:
        rid = (await c.post("/v1/rules", json=rule, headers=_h(sk))).json()["id"]
        first = await _identify(c, sk, COMPONENTS)
        assert first["verdict"] == "allow" and first["matchedRule"] is None
        assert (await c.get(f"/v1/rules/{rid}", headers=_h(sk))).json()["stats"]["matchCount"] == 1
        r = await c.put(f"/v1/rules/{rid}", json={"status": "live"}, headers=_h(sk))
        assert r.json()["status"] == "live"
        assert (await _identify(c, sk, COMPONENTS))["verdict"] == "block"
        await c.put(f"/v1/rules/{rid}", json={"status": "paused"}, headers=_h(sk))
        assert (await _identify(c, sk, COMPONENTS))["verdict"] is None
        r = await c.delete(f"/v1/rules/{rid}", headers=_h(sk))
        assert r.json() == {"deleted": True, "ruleId": rid}
        assert (await c.get(f"/v1/rules/{rid}", headers=_h(sk))).status_code == 404


@pytest.mark.anyio
async def test_bad_rules_are_refused_with_the_exact_field(env):
    _e, ws, app = env
    sk = ws.keys.sk_live
    base = {
        "name": "r",
        "conditions": {"field": "confidence", "operator": "gt", "value": 0.5},
        "action": {"verdict": "block"},
    }
    cases = [
        ({**base, "name": "x" * 201}, "name"),
        ({**base, "action": {"verdict": "maybe"}}, "action.verdict"),
        ({**base, "status": "on"}, "status"),
        (
            {**base, "conditions": {"field": "nope", "operator": "equals", "value": 1}},
            "conditions.field",
        ),
        (
            {
                **base,
                "conditions": {
                    "operator": "AND",
                    "rules": [
                        {"field": "confidence", "operator": "in", "value": {"list": "missing"}}
                    ],
                },
            },
            "conditions.rules[0].value.list",
        ),
        (
            {**base, "action": {"verdict": "block", "sideEffects": [{"type": "teleport"}]}},
            "action.sideEffects[0].type",
        ),
        ({k: v for k, v in base.items() if k != "conditions"}, "conditions"),
    ]
    async with _client(app) as c:
        for body, field in cases:
            r = await c.post("/v1/rules", json=body, headers=_h(sk))
            assert r.status_code == 400, body
            assert r.json()["error"]["field"] == field, (body, r.json())
        assert (await c.get("/v1/rules", headers=_h(sk))).json()["data"] == []
        assert (
            await c.put("/v1/rules/rul_nope", json={"status": "live"}, headers=_h(sk))
        ).status_code == 404
        assert (await c.get("/v1/rules", headers=_h(ws.keys.pk_live))).status_code == 403


@pytest.mark.anyio
async def test_a_side_effect_reaches_the_next_identification_not_a_later_rule(env):
    _e, ws, app = env
    sk = ws.keys.sk_live
    tagging = {
        "name": "Tag desktops",
        "priority": 1,
        "status": "live",
        "conditions": {"field": "device.type", "operator": "equals", "value": "desktop"},
        "action": {"verdict": "allow", "sideEffects": [{"type": "addToList", "list": "seen"}]},
    }
    watching = {
        "name": "Watch tagged",
        "priority": 2,
        "status": "monitor",
        "conditions": {"field": "visitorId", "operator": "in", "value": {"list": "seen"}},
        "action": {"verdict": "block"},
    }
    async with _client(app) as c:
        await c.post("/v1/lists", json={"name": "seen", "type": "visitor"}, headers=_h(sk))
        await c.post("/v1/rules", json=tagging, headers=_h(sk))
        watch_id = (await c.post("/v1/rules", json=watching, headers=_h(sk))).json()["id"]

        async def watched() -> int:
            detail = (await c.get(f"/v1/rules/{watch_id}", headers=_h(sk))).json()
            return detail["stats"]["matchCount"]

        first = await _identify(c, sk, COMPONENTS)
        assert first["matchedRule"]["name"] == "Tag desktops"
        assert await watched() == 0  # the list changed after the conditions were decided
        await _identify(c, sk, COMPONENTS)
        assert await watched() == 1  # the next identification sees the listed visitor
