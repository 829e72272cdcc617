"""Device analytics through the real server, counted against the stored identifications
themselves (read back through GET /v1/events), before and after a visitor is deleted."""

from __future__ import annotations

import collections
import copy
import random
from datetime import UTC, datetime, timedelta

import httpx
from _analytics_support import assert_error
from _device_support import CHROME_UA, COMPONENTS

from api.process import ServerProcess, cli

# Public addresses in several countries (the bundled GeoLite2 City database) and loopback.
ADDRESSES = ["8.8.8.8", "81.2.69.160", "2.16.0.1", "1.1.1.1", "185.60.216.35", "203.0.113.9"]
AGENTS = {
    "Linux": CHROME_UA,
    "Windows": CHROME_UA.replace("X11; Linux x86_64", "Windows NT 10.0; Win64; x64"),
    "bot": CHROME_UA.replace("Chrome/", "HeadlessChrome/"),
}


def _device(rng: random.Random, n: int) -> dict:
    c = copy.deepcopy(COMPONENTS)
    kind = rng.choice(list(AGENTS))
    c["userAgent"] = AGENTS[kind]
    c["canvas"] = f"{n:016x}"
    c["audio"] = f"{n}.5"
    if kind == "Windows":
        c["platform"] = "Win32"
        c["clientHints"] = {
            "brands": [{"brand": "Chromium", "version": "120"}],
            "platform": "Windows",
        }
    if kind == "bot":
        c["webdriver"] = True
    return c


def _all_events(client: httpx.Client) -> list[dict]:
    docs, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/events", params=params).json()
        for item in page["data"]:
            docs.append(client.get(f"/v1/events/{item['requestId']}").json())
        if not page["hasMore"]:
            return docs
        cursor = page["nextCursor"]


def _expect(docs: list[dict], key) -> dict:
    counts = collections.Counter(key(d) for d in docs)
    return {k: n for k, n in counts.items()}


def _got(answer: dict, name: str) -> dict:
    assert sum(g["count"] for g in answer["groups"]) == answer["total"]
    for g in answer["groups"]:
        assert g["pct"] == round(g["count"] / answer["total"], 4)
    return {g[name]: g["count"] for g in answer["groups"]}


def test_analytics_match_the_stored_identifications(tmp_path, servers):
    data = tmp_path / "data"
    config = tmp_path / "signalpost.toml"
    config.write_text('trusted_proxies = ["127.0.0.1/32"]\n')
    ws = cli("workspace", "create", "--name", "analytics", "--plan", "enterprise", data=data)
    secret = {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
    server = ServerProcess(data, env={"SIGNALPOST_CONFIG": str(config)})
    servers.append(server)
    server.start()
    rng = random.Random(8)
    with httpx.Client(base_url=server.url, headers=secret, timeout=30) as client:
        is_bot = {"field": "signals.bot.detected", "operator": "equals", "value": True}
        rule = {"name": "Block bots", "status": "live", "priority": 1, "conditions": is_bot,
                "action": {"verdict": "block"}}  # fmt: skip
        assert client.post("/v1/rules", json=rule).status_code == 201
        for n in range(60):
            body = {"components": _device(rng, n % 40), "type": "login"}
            headers = {"X-Forwarded-For": rng.choice(ADDRESSES)}
            r = client.post("/v1/agent/identify", json=body, headers=headers)
            assert r.status_code == 200, r.text
        docs = _all_events(client)
        assert len(docs) == 60
        day = datetime.now(UTC).date()
        window = {
            "from": (day - timedelta(days=1)).isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
        }

        def events(**params) -> dict:
            r = client.get("/v1/analytics/events", params={**window, **params})
            assert r.status_code == 200, r.text
            return r.json()

        assert events()["total"] == 60 and events()["groups"] == []
        assert _got(events(groupBy="verdict"), "verdict") == _expect(docs, lambda d: d["verdict"])
        assert _got(events(groupBy="platform"), "platform") == _expect(
            docs, lambda d: d["device"]["platform"]
        )
        by_country = _got(events(groupBy="country"), "country")
        assert by_country == _expect(docs, lambda d: d["ip"]["country"]) and len(by_country) >= 3
        assert _got(events(groupBy="day"), "day") == {day.isoformat(): 60}
        blocked = events(groupBy="platform", verdict="block")
        assert blocked["total"] == sum(1 for d in docs if d["verdict"] == "block") > 0

        signals = client.get("/v1/analytics/signals", params={**window, "groupBy": "signal"}).json()
        assert signals["total"] == 60
        bot = next(s for s in signals["signals"] if s["signal"] == "bot")
        bots = sum(1 for d in docs if d["signals"]["bot"]["detected"])
        assert bot["count"] == bots and bot["rate"] == round(bots / 60, 4)
        assert bot["trend"] == "stable"  # nothing in the previous window to compare with
        one = client.get("/v1/analytics/signals", params={**window, "signal": "tampered"}).json()
        assert [s["signal"] for s in one["signals"]] == ["tampered"]
        assert one["signals"][0]["count"] == sum(1 for d in docs if d["signals"]["tampered"])

        # A deleted visitor's identifications leave every figure at once.
        victim = docs[0]["visitorId"]
        gone = [d for d in docs if d["visitorId"] == victim]
        assert client.delete(f"/v1/visitors/{victim}").status_code == 200
        kept = [d for d in docs if d["visitorId"] != victim]
        assert events()["total"] == 60 - len(gone)
        assert _got(events(groupBy="verdict"), "verdict") == _expect(kept, lambda d: d["verdict"])

        r = client.get("/v1/analytics/events", params={"to": window["to"]})
        assert_error(r, 400, "validation_error", field="from")
        r = client.get("/v1/analytics/events", params={**window, "groupBy": "month"})
        assert_error(r, 400, "validation_error", field="groupBy")
        r = client.get("/v1/analytics/signals", params={**window, "signal": "ghost"})
        assert_error(r, 400, "validation_error", field="signal")
        r = client.get("/v1/analytics/events", params={"from": window["to"], "to": window["from"]})
        assert_error(r, 400, "validation_error", field="to")
