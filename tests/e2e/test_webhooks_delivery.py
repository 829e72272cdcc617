"""Deliveries to a real HTTPS receiver on loopback: payload, signatures, filters, pause/resume,
deletion, the connection-time address guard and per-endpoint concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime

import pytest
import standardwebhooks
from _device_support import COMPONENTS
from _webhook_support import Answer, wait_until

BOT = {**COMPONENTS, "automation": {"webdriver": True}, "canvas": "bot-canvas"}


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _block_registrations(hooks) -> str:
    rule = {
        "name": "Block registrations",
        "status": "live",
        "conditions": {"field": "event.type", "operator": "equals", "value": "registration"},
        "action": {"verdict": "block"},
    }
    r = hooks.api.post("/v1/rules", key=hooks.sk, json=rule)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_payload_is_the_documents_and_signed_both_ways(hooks):
    created = hooks.create()
    event = hooks.identify()
    (got,) = hooks.receiver.wait_for(1)
    payload = json.loads(got.body)
    assert set(payload) == {"event", "timestamp", "data"}
    assert payload["event"] == "identification" and payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert data["requestId"] == event["requestId"] and data["visitorId"] == event["visitorId"]
    assert data["verdict"] == event["verdict"] and data["signals"] == event["signals"]
    assert got.headers["content-type"] == "application/json"

    # X-Prynt-Signature: hex HMAC-SHA256 of the raw body with the secret, as documented.
    expected = hmac.new(created["secret"].encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-prynt-signature"], expected)
    # Standard Webhooks: the reference verifier accepts it...
    verifier = standardwebhooks.Webhook(created["secret"])
    assert verifier.verify(got.body, got.headers)["data"]["requestId"] == event["requestId"]
    assert got.headers["webhook-id"].startswith("msg_")
    # ...and refuses a changed body and a replay with an old timestamp.
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(got.body.replace(b"identification", b"identificatiox"), got.headers)
    stale = {**got.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(got.body, stale)

    delivered = hooks.settle(created["id"])
    assert [d["status"] for d in delivered] == ["delivered"]
    assert delivered[0]["id"] == got.headers["webhook-id"]
    listed = hooks.api.get("/v1/webhooks", key=hooks.sk).json()["data"][0]
    assert listed["successRate"] == 1.0 and listed["lastDeliveryAt"].endswith("Z")


def test_a_chosen_secret_verifies_as_raw_bytes(hooks):
    secret = "not-base64-but-long-enough!"
    hooks.create(secret=secret)
    hooks.identify()
    (got,) = hooks.receiver.wait_for(1)
    standardwebhooks.Webhook(secret.encode()).verify(got.body, got.headers)
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-prynt-signature"] == expected


def test_events_and_filters_choose_what_each_endpoint_gets(hooks):
    rule_id = _block_registrations(hooks)
    rx = hooks.receiver
    blocks = hooks.create(url=rx.url("/blocks"), events=["identification"],
                          filters={"verdict": ["block"]})  # fmt: skip
    bots = hooks.create(url=rx.url("/bots"), events=["identification"],
                        filters={"botDetected": True})  # fmt: skip
    matches = hooks.create(url=rx.url("/matches"), events=["rule_match"],
                           filters={"ruleId": [rule_id]})  # fmt: skip
    lists = hooks.create(url=rx.url("/lists"), events=["list_update"])
    everything = hooks.create(url=rx.url("/all"))

    hooks.identify(type="login")
    registration = hooks.identify(type="registration")
    bot = hooks.identify(BOT, type="login")
    listed = hooks.api.post("/v1/lists", key=hooks.sk, json={"name": "vip", "type": "visitor"})
    r = hooks.api.request(
        "PATCH",
        f"/v1/lists/{listed.json()['id']}/entries",
        key=hooks.sk,
        json={"add": [bot["visitorId"]]},
    )
    assert r.status_code == 200, r.text
    for hook in (blocks, bots, matches, lists, everything):
        hooks.settle(hook["id"])

    def events(path: str) -> list[tuple[str, str | None]]:
        out = []
        for got in rx.on(path):
            p = json.loads(got.body)
            out.append((p["event"], p["data"].get("requestId")))
        return out

    assert events("/blocks") == [("identification", registration["requestId"])]
    assert events("/bots") == [("identification", bot["requestId"])]
    assert events("/matches") == [("rule_match", registration["requestId"])]
    match = json.loads(rx.on("/matches")[0].body)["data"]
    assert match["rule"]["id"] == rule_id and match["verdict"] == "block"
    (update,) = rx.on("/lists")
    data = json.loads(update.body)["data"]
    assert data["listName"] == "vip" and data["added"] == [bot["visitorId"]]
    assert data["source"] == "api" and data["entryCount"] == 1
    assert sorted(e for e, _ in events("/all")) == [
        "identification", "identification", "identification", "list_update", "rule_match",
    ]  # fmt: skip


@pytest.mark.webhooks(max_in_flight=1)
def test_pause_stops_and_resume_restarts_deliveries(hooks):
    created = hooks.create()
    r = hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "paused"})
    assert r.json()["status"] == "paused"
    hooks.identify()
    # Queued in the event's own transaction, so already final once the request is answered.
    assert hooks.deliveries(created["id"]) == []
    hooks.checkpoint()
    assert hooks.receiver.on("/hook") == []
    hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "active"})
    event = hooks.identify()
    (got,) = hooks.receiver.wait_for(1, path="/hook")
    assert json.loads(got.body)["data"]["requestId"] == event["requestId"]


@pytest.mark.webhooks(retry_schedule=(0, 0.6, 1.2), max_in_flight=1, timeout_seconds=30.0)
def test_a_paused_endpoint_holds_its_retries_until_resumed(hooks):
    rx = hooks.receiver
    paused = threading.Event()
    # The first attempt is answered only once the endpoint is paused: its retry cannot have
    # been due while the endpoint was still active.
    rx.script = lambda got, n: (
        Answer(500, hold=paused) if got.path == "/hook" and n == 1 else Answer(200)
    )
    created = hooks.create()
    hooks.identify()
    rx.wait_for(1, path="/hook")
    r = hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "paused"})
    assert r.json()["status"] == "paused"
    paused.set()
    (failed,) = wait_until(lambda: [d for d in hooks.deliveries(created["id"]) if d["attempts"]])
    retry_due = _at(failed["nextAttemptAt"])
    time.sleep(max(0.0, retry_due - time.time()))
    hooks.checkpoint()  # the retry was due: had the pause not held it, it would be here
    assert len(rx.on("/hook")) == 1
    (held,) = hooks.deliveries(created["id"])
    assert (held["status"], held["attempts"]) == ("pending", 1)
    hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "active"})
    first, second = rx.wait_for(2, path="/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert [d["status"] for d in hooks.settle(created["id"])] == ["delivered"]


@pytest.mark.webhooks(
    retry_schedule=(0, 0.3, 0.6, 0.9, 1.2, 1.5), max_in_flight=1, timeout_seconds=30.0
)
def test_delete_cancels_pending_deliveries_at_once(hooks):
    rx = hooks.receiver
    rx.script = lambda got, n: Answer(500) if got.path == "/hook" else Answer(200)
    created = hooks.create()
    for _ in range(3):
        hooks.identify()
    rx.wait_for(3, path="/hook")
    # The three events are older than this, so each one's schedule is spent by then.
    schedule_spent = time.time() + 1.5
    r = hooks.api.delete(f"/v1/webhooks/{created['id']}", key=hooks.sk)
    assert r.status_code == 200
    r = hooks.api.get(f"/v1/webhooks/{created['id']}/deliveries", key=hooks.sk)
    assert r.status_code == 404
    hooks.checkpoint()  # attempts already on the wire at the deletion have landed
    sent = len(rx.on("/hook"))
    time.sleep(max(0.0, schedule_spent - time.time()))
    hooks.checkpoint()  # every retry has been due: had one survived, it would be here
    assert len(rx.on("/hook")) == sent


@pytest.mark.webhooks(allow_private=False, retry_schedule=(0,))
def test_the_address_guard_runs_when_a_delivery_connects(hooks):
    # A name is accepted at creation; it resolves to loopback when the delivery connects.
    created = hooks.create(url=hooks.receiver.url(host="localhost"))
    hooks.identify()
    (delivery,) = hooks.settle(created["id"])
    assert delivery["status"] == "failed"
    assert "refused address" in delivery["attemptLog"][0]["error"]
    assert delivery["attemptLog"][0]["status"] is None
    assert hooks.receiver.received == []


@pytest.mark.webhooks(max_in_flight_per_endpoint=1, timeout_seconds=30.0)
def test_a_slow_receiver_does_not_stall_the_others(hooks):
    rx = hooks.receiver
    fast_ones_arrived = threading.Event()
    # The slow endpoint answers only after the fast one has had all of its deliveries.
    rx.script = lambda got, n: Answer(hold=fast_ones_arrived) if got.path == "/slow" else Answer()
    slow = hooks.create(url=rx.url("/slow"))
    hooks.create(url=rx.url("/fast"))
    try:
        for _ in range(3):
            hooks.identify()
        rx.wait_for(1, path="/slow")
        rx.wait_for(3, path="/fast")
        assert len(rx.on("/slow")) == 1  # one in flight at a time for that endpoint
        pending = hooks.deliveries(slow["id"], status="pending")
        assert len(pending) == 3
    finally:
        fast_ones_arrived.set()
    assert [d["status"] for d in hooks.settle(slow["id"])] == ["delivered"] * 3
