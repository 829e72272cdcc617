"""Rule side effects delivered through the outbox: `slack` (a readable message to an incoming
webhook URL, or the configured default), `webhook` (a rule_match to a registered endpoint) and
list updates made by `addToList`."""

from __future__ import annotations

import json

import pytest
from _device_support import COMPONENTS
from _webhook_support import Answer

BOT = {**COMPONENTS, "automation": {"webdriver": True}, "canvas": "bot-canvas"}


def _rule(hooks, *effects: dict, name: str = "Block bots") -> str:
    rule = {
        "name": name,
        "status": "live",
        "conditions": {"field": "signals.bot.detected", "operator": "equals", "value": True},
        "action": {"verdict": "block", "sideEffects": list(effects)},
    }
    r = hooks.api.post("/v1/rules", key=hooks.sk, json=rule)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_slack_side_effect_posts_a_readable_message_with_retries(hooks):
    rx = hooks.receiver
    rx.script = lambda got, n: Answer(500) if n == 1 else Answer(200)
    _rule(hooks, {"type": "slack", "url": rx.url("/slack")})
    hooks.identify()  # no match: nothing for Slack
    bot = hooks.identify(BOT, type="<!channel> <https://evil.example|click>")
    first, second = rx.wait_for(2, path="/slack")
    assert first.body == second.body
    message = json.loads(second.body)
    assert set(message) == {"text"}
    text = message["text"]
    assert "Rule *Block bots* matched: verdict *block*" in text
    assert bot["visitorId"] in text and bot["requestId"] in text and "bot" in text
    # What the browser sent is shown, not interpreted by Slack.
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in text and "<!" not in text
    assert "webhook-signature" not in second.headers  # Slack verifies nothing
    assert len(rx.received) == 2


@pytest.mark.webhooks(slack_default_url="{receiver}/default-slack")
def test_slack_side_effect_without_url_uses_the_configured_default(hooks):
    _rule(hooks, {"type": "slack"})
    hooks.identify(BOT)
    (got,) = hooks.receiver.wait_for(1, path="/default-slack")
    assert "Block bots" in json.loads(got.body)["text"]


def test_webhook_side_effect_sends_rule_match_to_the_registered_endpoint(hooks):
    rx = hooks.receiver
    target = hooks.create(url=rx.url("/target"), events=["identification"])
    both = hooks.create(url=rx.url("/both"), events=["rule_match"])
    rule_id = _rule(
        hooks,
        {"type": "webhook", "url": rx.url("/target")},
        {"type": "webhook"},  # every active endpoint
    )
    bot = hooks.identify(BOT)
    hooks.settle(target["id"])
    hooks.settle(both["id"])
    kinds = sorted(json.loads(r.body)["event"] for r in rx.on("/target"))
    assert kinds == ["identification", "rule_match"]
    (match,) = rx.on("/both")  # subscribed and named by the side effect: sent once
    data = json.loads(match.body)["data"]
    assert data["rule"] == {"id": rule_id, "name": "Block bots", "priority": 1}
    assert data["requestId"] == bot["requestId"] and data["verdict"] == "block"


def test_add_to_list_side_effect_is_a_list_update(hooks):
    hooks.api.post("/v1/lists", key=hooks.sk, json={"name": "bots", "type": "visitor"})
    created = hooks.create(events=["list_update"])
    _rule(hooks, {"type": "addToList", "list": "bots"})
    bot = hooks.identify(BOT)
    (got,) = hooks.receiver.wait_for(1)
    payload = json.loads(got.body)
    assert payload["event"] == "list_update"
    assert payload["data"]["added"] == [bot["visitorId"]]
    assert payload["data"]["source"] == "rule" and payload["data"]["listName"] == "bots"
    assert [d["event"] for d in hooks.settle(created["id"])] == ["list_update"]
