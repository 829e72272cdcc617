"""The endpoints each kind of key is refused on, with valid bodies: a refusal must not be explained
by a bad request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .model import Owner, device, hours_ago


def secret_endpoints(owner: Owner) -> Iterator[tuple[str, str, Any, dict[str, Any] | None]]:
    """Every secret-only endpoint, with a valid body and, in paths, ids of `owner` where it has
    them: a refusal must not be explained by a bad request, and must leave the data alone."""
    rid = next(iter(owner.idents), "req_0")
    vid = next(iter(owner.visitors), "pv_0")
    rule = next(iter(owner.rules), "rul_0")
    lst = next(iter(owner.lists), "lst_0")
    hook = next(iter(owner.webhooks), "whk_0")
    cohort = next(iter(owner.cohorts), "coh_0")
    run = owner.runs[-1] if owner.runs else "run_0"
    delivery = next(iter(owner.deliveries), "msg_0")
    span = {"from": hours_ago(48), "to": hours_ago(-24)}
    condition = {"field": "event.type", "operator": "equals", "value": "login"}
    yield "GET", "/v1/usage", None, None
    yield "GET", "/v1/export", None, None
    yield "GET", "/v1/events", None, None
    yield "GET", f"/v1/events/{rid}", None, None
    yield "GET", f"/v1/visitors/{vid}", None, None
    yield "GET", f"/v1/visitors/{vid}/events", None, None
    yield "DELETE", f"/v1/visitors/{vid}", None, None
    yield "POST", "/v1/rules", {
        "name": "refused", "status": "live", "action": {"verdict": "block"},
        "conditions": {"operator": "AND", "rules": [condition]},
    }, None  # fmt: skip
    yield "GET", "/v1/rules", None, None
    yield "GET", f"/v1/rules/{rule}", None, None
    yield "PUT", f"/v1/rules/{rule}", {"status": "paused"}, None
    yield "DELETE", f"/v1/rules/{rule}", None, None
    yield "POST", f"/v1/rules/{rule}/backtest", {"days": 1}, None
    yield "POST", "/v1/lists", {"name": "refused", "type": "ip"}, None
    yield "GET", "/v1/lists", None, None
    yield "PATCH", f"/v1/lists/{lst}/entries", {"add": ["10.9.9.9"]}, None
    yield "DELETE", f"/v1/lists/{lst}", None, None
    yield "POST", "/v1/funnels/query", {"steps": ["signup", "invite_sent"], **span}, None
    plan_is_pro = {"type": "property", "property": "plan", "operator": "equals", "value": "pro"}
    yield "POST", "/v1/cohorts", {"name": "refused", "definition": plan_is_pro}, None
    yield "GET", "/v1/cohorts", None, None
    yield "GET", f"/v1/cohorts/{cohort}", None, None
    yield "DELETE", f"/v1/cohorts/{cohort}", None, None
    yield "GET", f"/v1/cohorts/{cohort}/members", None, None
    yield "POST", "/v1/auto-discovery/trigger", None, None
    yield "GET", "/v1/auto-discovery/results", None, None
    yield "GET", f"/v1/auto-discovery/runs/{run}", None, None
    yield "GET", "/v1/analytics/events", None, {**span, "groupBy": "verdict"}
    yield "GET", "/v1/analytics/signals", None, span
    yield "POST", "/v1/webhooks", {"url": "https://refused.invalid/h"}, None
    yield "GET", "/v1/webhooks", None, None
    yield "GET", f"/v1/webhooks/{hook}", None, None
    yield "PUT", f"/v1/webhooks/{hook}", {"status": "paused"}, None
    yield "DELETE", f"/v1/webhooks/{hook}", None, None
    yield "GET", f"/v1/webhooks/{hook}/deliveries", None, None
    yield "POST", f"/v1/webhooks/{hook}/deliveries/{delivery}/replay", None, None


def client_endpoints(owner: Owner) -> Iterator[tuple[str, str, Any, dict[str, Any] | None]]:
    """The write endpoints a public key may call, with valid bodies."""
    user = owner.user(0)
    yield "POST", "/v1/events", {"user_id": user, "event": "signup"}, None
    yield "POST", "/v1/events/batch", {"events": [{"user_id": user, "event": "signup"}]}, None
    yield "POST", "/v1/identify", {"user_id": user, "traits": {"plan": "pro"}}, None
    yield "POST", "/v1/agent/identify", {"components": device(0)}, None
