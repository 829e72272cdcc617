"""Retries on a shortened schedule: 500s, timeouts, 410 Gone, 429 with Retry-After, and the
replay of a delivery that failed for good."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from _webhook_support import Answer


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ids(received) -> set[str]:
    return {r.headers["webhook-id"] for r in received}


def test_500s_are_retried_on_the_schedule_with_the_same_id(hooks):
    hooks.receiver.script = lambda got, n: Answer(500) if n <= 2 else Answer(200)
    created = hooks.create()
    hooks.identify()
    received = hooks.receiver.wait_for(3)
    assert len(_ids(received)) == 1
    (delivery,) = hooks.settle(created["id"])
    # Attempts are due 0.1 s and 0.3 s after the event (jitter is off in these tests).
    start = _at(delivery["createdAt"])
    offsets = [_at(a["at"]) - start for a in delivery["attemptLog"]]
    assert offsets[0] < offsets[1] < offsets[2]
    assert offsets[1] >= 0.1 and offsets[2] >= 0.3
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status"] for a in delivery["attemptLog"]] == [500, 500, 200]
    assert delivery["attemptLog"][0]["error"] == "HTTP 500"
    assert delivery["lastStatus"] == 200 and delivery["nextAttemptAt"] is None
    listed = hooks.api.get(f"/v1/webhooks/{created['id']}", key=hooks.sk).json()
    assert listed["successRate"] == pytest.approx(1 / 3, abs=1e-3)
    assert listed["lastDeliveryAt"] == delivery["lastAttemptAt"]


@pytest.mark.webhooks(timeout_seconds=0.4)
def test_a_receiver_that_does_not_answer_in_time_is_retried(hooks):
    retried = threading.Event()
    # The first answer waits for the retry, which comes only after the sender gave up on it.
    hooks.receiver.script = lambda got, n: Answer(hold=retried) if n == 1 else Answer()
    created = hooks.create()
    hooks.identify()
    try:
        hooks.receiver.wait_for(2)
    finally:
        retried.set()
    (delivery,) = hooks.settle(created["id"])
    assert delivery["status"] == "delivered"
    first, second = delivery["attemptLog"]
    assert first["status"] is None and "No answer within 0.4 s" in first["error"]
    assert first["durationMs"] >= 350
    assert second["status"] == 200


@pytest.mark.webhooks(retry_schedule=(0, 0.1))
def test_a_spent_schedule_fails_and_a_replay_sends_it_again(hooks):
    hooks.receiver.script = lambda got, n: Answer(503) if n <= 2 else Answer(200)
    created = hooks.create()
    hooks.identify()
    (failed,) = hooks.settle(created["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 2
    listed = hooks.deliveries(created["id"], status="failed")
    assert [d["id"] for d in listed] == [failed["id"]]
    assert hooks.deliveries(created["id"], status="delivered") == []

    r = hooks.api.post(
        f"/v1/webhooks/{created['id']}/deliveries/{failed['id']}/replay", key=hooks.sk
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    received = hooks.receiver.wait_for(3)
    assert _ids(received) == {failed["id"]}  # the receiver can deduplicate a replay
    (done,) = hooks.settle(created["id"])
    assert done["status"] == "delivered" and done["attempts"] == 3
    # A pending or unknown delivery cannot be replayed.
    base = f"/v1/webhooks/{created['id']}/deliveries"
    assert hooks.api.post(f"{base}/msg_nope/replay", key=hooks.sk).status_code == 404


def test_410_gone_disables_the_endpoint_until_it_is_resumed(hooks):
    hooks.receiver.script = lambda got, n: Answer(410) if n == 1 else Answer(200)
    created = hooks.create()
    hooks.identify()
    hooks.receiver.wait_for(1)
    (gone,) = hooks.settle(created["id"])
    assert gone["status"] == "failed" and gone["attempts"] == 1
    hook = hooks.api.get(f"/v1/webhooks/{created['id']}", key=hooks.sk).json()
    assert hook["status"] == "disabled"
    hooks.identify()  # nothing is queued for a disabled endpoint
    assert len(hooks.deliveries(created["id"])) == 1
    r = hooks.api.put(f"/v1/webhooks/{created['id']}", key=hooks.sk, json={"status": "active"})
    assert r.json()["status"] == "active"
    hooks.identify()
    hooks.receiver.wait_for(2)


@pytest.mark.webhooks(retry_schedule=(0, 0.05, 0.1))
def test_429_retry_after_is_honoured(hooks):
    hooks.receiver.script = lambda got, n: (
        Answer(429, {"Retry-After": "1"}) if n == 1 else Answer(200)
    )
    created = hooks.create()
    hooks.identify()
    first, second = hooks.receiver.wait_for(2)
    assert second.at - first.at >= 0.95  # not the schedule's 0.05 s
    (delivery,) = hooks.settle(created["id"])
    assert [a["status"] for a in delivery["attemptLog"]] == [429, 200]
