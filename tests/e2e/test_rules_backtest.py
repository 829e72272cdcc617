"""Backtests through a real `signalpost serve`: counts match the identifications sent."""

from __future__ import annotations

import httpx
import pytest
from _device_support import CHROME_UA, COMPONENTS

from api.process import ServerProcess, cli

BOT = {**COMPONENTS, "automation": {"webdriver": True}, "canvas": "bot-canvas"}
BOT_REGISTRATIONS = {
    "name": "Block Bot Registrations",
    "status": "draft",
    "conditions": {
        "operator": "AND",
        "rules": [
            {"field": "signals.bot.detected", "operator": "equals", "value": True},
            {"field": "event.type", "operator": "equals", "value": "registration"},
        ],
    },
    "action": {"verdict": "block"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("backtest") / "data"
    ws = cli("workspace", "create", "--name", "backtest", "--plan", "enterprise", data=data)
    with ServerProcess(data, workers=1) as proc, httpx.Client(base_url=proc.url) as client:
        yield client, ws["keys"]


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": CHROME_UA}


def _identify(client: httpx.Client, key: str, components: dict, kind: str) -> dict:
    body = {"components": components, "type": kind}
    r = client.post("/v1/agent/identify", json=body, headers=_h(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_backtest_counts_what_was_sent_and_hides_deleted_visitors(server):
    client, keys = server
    pk, sk = keys["pk_live"], keys["sk_live"]
    sent = [_identify(client, pk, BOT, "registration") for _ in range(5)]
    sent += [_identify(client, pk, COMPONENTS, "registration") for _ in range(3)]
    sent += [_identify(client, pk, BOT, "login") for _ in range(2)]
    sent += [_identify(client, pk, COMPONENTS, "login") for _ in range(4)]
    bots = {a["requestId"]: a for a in sent[:5]}

    rule = client.post("/v1/rules", json=BOT_REGISTRATIONS, headers=_h(sk)).json()
    r = client.post(
        f"/v1/rules/{rule['id']}/backtest", json={"days": 1, "sampleSize": 3}, headers=_h(sk)
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert list(out) == [
        "ruleId", "matchCount", "totalEvents", "matchRate", "estimatedFpr", "days",
        "durationMs", "sample",
    ]  # fmt: skip
    assert (out["ruleId"], out["matchCount"], out["totalEvents"], out["days"]) == (
        rule["id"], 5, 14, 1,
    )  # fmt: skip
    assert out["matchRate"] == round(5 / 14, 6)
    assert 0.0 <= out["estimatedFpr"] <= 1.0
    assert isinstance(out["durationMs"], int) and out["durationMs"] >= 0
    assert len(out["sample"]) == 3
    for item in out["sample"]:
        assert set(item) == {"requestId", "visitorId", "timestamp"}
        assert item["visitorId"] == bots[item["requestId"]]["visitorId"]
    assert out["sample"][0]["requestId"] == sent[4]["requestId"]  # the newest match first
    stamps = [item["timestamp"] for item in out["sample"]]
    assert stamps == sorted(stamps, reverse=True)

    # No body at all: 7 days, 10 samples at most.
    r = client.post(f"/v1/rules/{rule['id']}/backtest", headers=_h(sk))
    assert r.status_code == 200, r.text
    assert (r.json()["days"], r.json()["matchCount"], len(r.json()["sample"])) == (7, 5, 5)

    bot_visitor = sent[0]["visitorId"]
    assert client.delete(f"/v1/visitors/{bot_visitor}", headers=_h(sk)).status_code == 200
    gone = sum(a["visitorId"] == bot_visitor for a in sent)
    after = client.post(f"/v1/rules/{rule['id']}/backtest", json={}, headers=_h(sk)).json()
    assert (after["matchCount"], after["totalEvents"]) == (0, 14 - gone)
    assert after["sample"] == [] and after["matchRate"] == 0.0

    logins = {
        "name": "Logins",
        "conditions": {"field": "event.type", "operator": "in", "value": ["login"]},
        "action": {"verdict": "challenge"},
    }
    lid = client.post("/v1/rules", json=logins, headers=_h(sk)).json()["id"]
    counted = client.post(f"/v1/rules/{lid}/backtest", json={"days": 30}, headers=_h(sk)).json()
    kept = [a for a in sent[10:] + sent[8:10] if a["visitorId"] != bot_visitor]
    assert (counted["matchCount"], counted["days"]) == (len(kept), 30)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 31}, "days"),
        ({"days": "7"}, "days"),
        ({"days": 1.5}, "days"),
        ({"days": True}, "days"),
        ({"sampleSize": 101}, "sampleSize"),
        ({"sampleSize": -1}, "sampleSize"),
        ({"days": 7, "sample": 3}, "sample"),
    ],
)
def test_bad_bodies_name_the_exact_field(server, body, field):
    client, keys = server
    sk = keys["sk_live"]
    rid = client.post("/v1/rules", json=BOT_REGISTRATIONS, headers=_h(sk)).json()["id"]
    r = client.post(f"/v1/rules/{rid}/backtest", json=body, headers=_h(sk))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", field)


def test_unknown_rules_bad_json_and_public_keys(server):
    client, keys = server
    sk, pk = keys["sk_live"], keys["pk_live"]
    r = client.post("/v1/rules/rul_nope/backtest", json={"days": 1}, headers=_h(sk))
    assert r.status_code == 404
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("not_found", "ruleId")
    rid = client.post("/v1/rules", json=BOT_REGISTRATIONS, headers=_h(sk)).json()["id"]
    r = client.post(f"/v1/rules/{rid}/backtest", content=b"{days", headers=_h(sk))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.post(f"/v1/rules/{rid}/backtest", json={}, headers=_h(pk))
    assert r.status_code == 403
    test_key = client.post(f"/v1/rules/{rid}/backtest", json={}, headers=_h(keys["sk_test"]))
    assert test_key.status_code == 404  # the rule lives in the live environment
