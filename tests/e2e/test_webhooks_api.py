"""Webhooks through HTTP: create, list, update, delete, and what is refused at creation."""

from __future__ import annotations

import base64

import pytest


def test_create_answers_as_the_document_shows(hooks):
    created = hooks.create(
        url="https://hooks.example.com/prynt",
        events=["identification", "rule_match"],
        filters={"verdict": ["block", "challenge"]},
    )
    assert created["id"].startswith("whk_") and len(created["id"]) == 16
    assert created["url"] == "https://hooks.example.com/prynt"
    assert created["status"] == "active"
    assert created["events"] == ["identification", "rule_match"]
    assert created["filters"] == {"verdict": ["block", "challenge"]}
    assert created["createdAt"].endswith("Z")
    # An auto-generated secret is a Standard Webhooks secret: whsec_ + base64 of 24 bytes.
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][6:])) == 24


def test_defaults_and_a_chosen_secret(hooks):
    created = hooks.create(url="https://a.example.com/h", secret="my-own-secret-value-1234")
    assert created["events"] == ["identification", "rule_match", "list_update"]
    assert created["filters"] == {}
    assert created["secret"] == "my-own-secret-value-1234"
    other = hooks.create(
        url="https://b.example.com/h", filters={"ruleId": "rul_1", "verdict": "block"}
    )
    assert other["filters"] == {"ruleId": ["rul_1"], "verdict": ["block"]}
    assert other["secret"] != created["secret"]


def test_list_filters_pages_and_counts(hooks):
    ids = [hooks.create(url=f"https://h{i}.example.com/x")["id"] for i in range(5)]
    r = hooks.api.put(f"/v1/webhooks/{ids[1]}", key=hooks.sk, json={"status": "paused"})
    assert r.status_code == 200
    page = hooks.api.get("/v1/webhooks", key=hooks.sk).json()
    assert page["total"] == 5 and [w["id"] for w in page["data"]] == ids
    first = page["data"][0]
    assert set(first) >= {"id", "url", "events", "status", "createdAt", "lastDeliveryAt"}
    assert first["lastDeliveryAt"] is None and first["successRate"] is None
    assert "secret" not in first
    active = hooks.api.get("/v1/webhooks?status=active&limit=2&offset=1", key=hooks.sk).json()
    assert active["total"] == 4 and [w["id"] for w in active["data"]] == [ids[2], ids[3]]
    paused = hooks.api.get("/v1/webhooks", key=hooks.sk, params={"status": "paused"}).json()
    assert [w["id"] for w in paused["data"]] == [ids[1]]
    for query in ("limit=101", "limit=0", "offset=-1", "status=gone"):
        r = hooks.api.get(f"/v1/webhooks?{query}", key=hooks.sk)
        assert r.status_code == 400, query


def test_update_changes_url_events_and_status(hooks):
    created = hooks.create(url="https://old.example.com/h")
    r = hooks.api.put(
        f"/v1/webhooks/{created['id']}",
        key=hooks.sk,
        json={"url": "https://new.example.com/h", "events": ["list_update"], "status": "paused"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == created["id"] and body["url"] == "https://new.example.com/h"
    assert body["events"] == ["list_update"] and body["status"] == "paused"
    assert body["updatedAt"] >= created["createdAt"]
    got = hooks.api.get(f"/v1/webhooks/{created['id']}", key=hooks.sk).json()
    assert got["url"] == "https://new.example.com/h" and got["status"] == "paused"
    r = hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "active"})
    assert r.json()["status"] == "active"


def test_delete_removes_the_webhook(hooks):
    created = hooks.create()
    r = hooks.api.delete(f"/v1/webhooks/{created['id']}", key=hooks.sk)
    assert r.status_code == 200
    assert r.json() == {"deleted": True, "webhookId": created["id"]}
    for method in ("get", "delete"):
        r = getattr(hooks.api, method)(f"/v1/webhooks/{created['id']}", key=hooks.sk)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "paused"})
    assert r.status_code == 404
    assert hooks.api.get("/v1/webhooks", key=hooks.sk).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/h"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@example.com/h"}, "url"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": ["purchase"]}, "events[0]"),
        ({"url": "https://example.com/h", "filters": {"verdict": ["maybe"]}}, "filters.verdict[0]"),
        ({"url": "https://example.com/h", "filters": {"country": "DE"}}, "filters.country"),
        ({"url": "https://example.com/h", "secret": "short"}, "secret"),
        ({"url": "https://example.com/h", "status": "active"}, "status"),
        ({"events": ["identification"]}, "url"),
    ],
)
def test_bad_input_is_refused_with_its_field(hooks, body, field):
    r = hooks.api.post("/v1/webhooks", key=hooks.sk, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert hooks.api.get("/v1/webhooks", key=hooks.sk).json()["total"] == 0


@pytest.mark.webhooks(allow_private=False)
@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/h",
        "https://127.0.0.1:8443/h",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/h",
        "https://[::ffff:192.168.1.1]/h",
        "https://100.64.0.1/h",
        "https://0.0.0.0/h",
    ],
)
def test_a_literal_private_address_is_refused_at_creation(hooks, url):
    r = hooks.api.post("/v1/webhooks", key=hooks.sk, json={"url": url})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "url"
    assert "private" in r.json()["error"]["message"]


def test_plain_http_is_refused_unless_configured(hooks, tmp_path):
    r = hooks.api.post("/v1/webhooks", key=hooks.sk, json={"url": "http://example.com/h"})
    assert r.status_code == 400 and "HTTPS" in r.json()["error"]["message"]
    r = hooks.api.put("/v1/webhooks/whk_000000000000", key=hooks.sk, json={"url": "http://x.io"})
    assert r.status_code == 400  # the URL is checked before the webhook is looked up


@pytest.mark.webhooks(allow_http=True)
def test_plain_http_allowed_for_local_development(hooks):
    assert hooks.create(url="http://localhost:9000/h")["url"] == "http://localhost:9000/h"


def test_public_keys_and_other_environments_see_nothing(hooks):
    created = hooks.create()
    r = hooks.api.get("/v1/webhooks", key=hooks.ws.keys.pk_live)
    assert r.status_code == 403
    test_env = hooks.api.get("/v1/webhooks", key=hooks.ws.keys.sk_test).json()
    assert test_env["total"] == 0
    r = hooks.api.get(f"/v1/webhooks/{created['id']}", key=hooks.ws.keys.sk_test)
    assert r.status_code == 404


def test_rule_side_effects_name_allowed_targets(hooks):
    rule = {
        "name": "Tell Slack",
        "status": "live",
        "conditions": {"field": "signals.bot.detected", "operator": "equals", "value": True},
        "action": {"verdict": "block", "sideEffects": [{"type": "slack"}]},
    }
    r = hooks.api.post("/v1/rules", key=hooks.sk, json=rule)
    assert r.status_code == 400  # no URL and no default Slack URL configured
    assert r.json()["error"]["field"] == "action.sideEffects[0].url"
    rule["action"]["sideEffects"] = [{"type": "webhook", "url": "http://example.com/h"}]
    assert hooks.api.post("/v1/rules", key=hooks.sk, json=rule).status_code == 400
    rule["action"]["sideEffects"] = [{"type": "slack", "url": "https://hooks.slack.com/x"}]
    assert hooks.api.post("/v1/rules", key=hooks.sk, json=rule).status_code == 201


@pytest.mark.webhooks(deliver=False)
def test_deliveries_not_yet_taken_are_listed_pending_and_cannot_be_replayed(hooks):
    """With no delivery worker, deliveries stay in the outbox: listed as pending with no
    attempt; replaying one is refused and writes nothing to the delivery book."""
    created = hooks.create(events=["identification"])
    first, second = hooks.identify(), hooks.identify()
    listed = hooks.deliveries(created["id"])
    assert [d["status"] for d in listed] == ["pending", "pending"]
    assert [d["attempts"] for d in listed] == [0, 0]
    assert [d["payload"]["data"]["requestId"] for d in listed] == [
        second["requestId"],
        first["requestId"],
    ]  # newest first
    store = hooks.engine.store
    with store.read_book() as txn:
        before = [bytes(k) for k in txn.cursor(db=store.book).iternext(values=False)]
    base = f"/v1/webhooks/{created['id']}/deliveries"
    r = hooks.api.post(f"{base}/{listed[0]['id']}/replay", key=hooks.sk)
    assert r.status_code == 400 and r.json()["error"]["field"] == "deliveryId", r.text
    with store.read_book() as txn:
        assert [bytes(k) for k in txn.cursor(db=store.book).iternext(values=False)] == before
    assert hooks.deliveries(created["id"]) == listed
