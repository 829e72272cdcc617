"""Plan-gated features: scores on pro and above, rules on scores refused below."""

from __future__ import annotations

import json

import msgspec
import pytest

from engine.device import AgentRequest
from engine.errors import InvalidInput
from engine.rule_store import RuleIn

COMPONENTS = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/121.0", "canvas": "ab12",
              "timezone": "Europe/Berlin", "languages": ["de"]}  # fmt: skip
HIGH = {"field": "scores.suspect", "operator": "gte", "value": 80}
SCORED = {"name": "risky", "conditions": HIGH, "action": {"verdict": "block"}, "status": "live"}


def test_scores_follow_the_plan_and_a_plan_change_applies_at_once(engine):
    ws = engine.create_workspace("gated", "growth")
    tenant = engine.authenticate(ws.keys.sk_live).tenant
    request = msgspec.json.decode(json.dumps({"components": COMPONENTS}), type=AgentRequest)
    assert engine.identify_device(tenant, request, client_ip="81.2.3.4").scores is None
    with pytest.raises(InvalidInput) as refused:
        engine.create_rule(tenant, msgspec.convert(SCORED, RuleIn))
    assert refused.value.field == "conditions" and "pro" in refused.value.message
    assert engine.set_plan(ws.id, "pro").plan == "pro"
    assert engine.identify_device(tenant, request, client_ip="81.2.3.4").scores is not None
    assert engine.create_rule(tenant, msgspec.convert(SCORED, RuleIn)).status == "live"
