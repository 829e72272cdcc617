"""The OpenAPI paths of the device API: identification, events, visitors, rules, lists and
webhooks. Operations that create a resource link to the operations that use its id."""

from __future__ import annotations

from typing import Any

from engine import backtest
from engine import webhooks as webhooks_engine

from . import device, lists, rules, webhooks
from .openapi_parts import INSTANT_ORDER, STATE_FIELDS, WRITE_ERRORS, link, operation, path, ref
from .params import OFFSET

_RULE = path("rule_id", "The rule id (rul_…).")
_LIST = path("list_id", "The list id (lst_…).")
_HOOK = path("webhook_id", "The webhook id (whk_…).")
_VISITOR = path("visitor_id", "The visitor id (pv_…).")
_RULE_REFS = ["conditions*.value.list", "*sideEffects[*].list"]


def _id_links(targets: dict[str, str], parameter: str, value: str) -> dict[str, Any]:
    return {
        name: link(target, f"The {parameter} of this answer.", **{parameter: value})
        for name, target in targets.items()
    }


def device_paths() -> dict[str, Any]:
    visitor_links = _id_links(
        {"GetVisitor": "getVisitor", "DeleteVisitor": "deleteVisitor",
         "VisitorEvents": "listVisitorEvents"},
        "visitor_id", "$response.body#/visitorId",
    )  # fmt: skip
    return {
        "/v1/agent/identify": {
            "post": operation(
                "identifyDevice",
                "Identify the device running the browser agent (or a relayed mobile payload). "
                "A public key gets {requestId, visitorId, confidence, visitorFound}; a secret key "
                "gets the full event document and may send the `mobile` fields.",
                body="AgentRequest",
                response={"oneOf": [ref("AgentAnswer"), ref("IdentificationEvent")]},
                params=[device.STORAGE_COOKIE_PARAM],
                headers={"Set-Cookie": device.STORAGE_COOKIE_HEADER},
                public=True,
                errors=WRITE_ERRORS,
                links={
                    "GetEvent": link(
                        "getEvent", "This identification.", request_id="$response.body#/requestId"
                    ),
                    **visitor_links,
                },
            )
        },
        "/v1/events/{request_id}": {
            "get": operation(
                "getEvent",
                "One identification event.",
                response=ref("IdentificationEvent"),
                params=[path("request_id", "The request id (req_…).")],
                errors=("404",),
            )
        },
        "/v1/visitors/{visitor_id}": {
            "get": operation(
                "getVisitor",
                "A visitor: first and last seen, visits, devices, linked accounts, lists.",
                response=ref("Visitor"),
                params=[_VISITOR],
                errors=("404",),
            ),
            "delete": operation(
                "deleteVisitor",
                "Delete every event, profile, device record and list membership of a visitor.",
                response=ref("Deleted"),
                params=[_VISITOR],
                errors=(*WRITE_ERRORS, "404"),
            ),
        },
        "/v1/visitors/{visitor_id}/events": {
            "get": operation(
                "listVisitorEvents",
                "A visitor's identifications, newest first.",
                response=ref("EventPage"),
                params=[_VISITOR, *[p.doc() for p in device.PAGE_PARAMS]],
                errors=("400", "404"),
                extensions={STATE_FIELDS: ["cursor"], INSTANT_ORDER: [["after", "before"]]},
            )
        },
        **_rule_paths(),
        **_list_paths(),
        **_webhook_paths(),
    }


def _rule_paths() -> dict[str, Any]:
    written = _id_links(
        {"GetRule": "getRule", "UpdateRule": "updateRule", "DeleteRule": "deleteRule",
         "BacktestRule": "backtestRule"},
        "rule_id", "$response.body#/id",
    )  # fmt: skip
    return {
        "/v1/rules": {
            "post": operation(
                "createRule",
                "Create a rule; it governs the next identification in every worker.",
                body="RuleIn",
                response=ref("RuleWritten"),
                status="201",
                links=written,
                extensions={STATE_FIELDS: _RULE_REFS},
                errors=WRITE_ERRORS,
            ),
            "get": operation(
                "listRules",
                "Rules in priority order (summaries: condition operator and leaf count).",
                response=ref("RulePage"),
                params=(rules.STATUS, rules.LIMIT, OFFSET),
                errors=("400",),
            ),
        },
        "/v1/rules/{rule_id}": {
            "get": operation(
                "getRule",
                "One rule with its conditions, action and match statistics.",
                response=ref("RuleOut"),
                params=[_RULE],
                errors=("404",),
            ),
            "put": operation(
                "updateRule",
                "Update part of a rule; `sideEffects` replaces the existing list.",
                body="RulePatch",
                response=ref("RuleWritten"),
                params=[_RULE],
                errors=(*WRITE_ERRORS, "404"),
                links=written,
                extensions={STATE_FIELDS: _RULE_REFS},
            ),
            "delete": operation(
                "deleteRule",
                "Delete a rule; it stops being evaluated at once.",
                response=ref("RuleDeleted"),
                params=[_RULE],
                errors=(*WRITE_ERRORS, "404"),
            ),
        },
        "/v1/rules/{rule_id}/backtest": {
            "post": operation(
                "backtestRule",
                "Run a rule (any status) over the identifications of the last `days` (1 to "
                f"{backtest.MAX_DAYS}, default 7): matches, total, rate, estimated false "
                "positive rate and up to "
                "`sampleSize` (0 to 100, default 10) matched events spread over the window. "
                "The body may be empty.",
                body="BacktestIn",
                body_required=False,
                response=ref("BacktestResult"),
                params=[_RULE],
                errors=("404",),
            )
        },
    }


def _list_paths() -> dict[str, Any]:
    created = _id_links(
        {"PatchEntries": "patchListEntries", "DeleteList": "deleteList"},
        "list_id", "$response.body#/id",
    )  # fmt: skip
    return {
        "/v1/lists": {
            "post": operation(
                "createList",
                "Create a list of visitor ids, IP addresses or emails (name unique).",
                body="ListIn",
                response=ref("ListOut"),
                status="201",
                links=created,
                extensions={STATE_FIELDS: ["name"]},
                errors=WRITE_ERRORS,
            ),
            "get": operation(
                "listLists",
                "The workspace environment's lists with their live entry counts.",
                response=ref("ListPage"),
                params=(lists.TYPE, lists.LIMIT, OFFSET),
                errors=("400",),
            ),
        },
        "/v1/lists/{list_id}/entries": {
            "patch": operation(
                "patchListEntries",
                "Add and remove up to 1,000 entries atomically; one invalid entry changes nothing.",
                body="EntriesIn",
                response=ref("EntriesResult"),
                params=[_LIST],
                errors=(*WRITE_ERRORS, "404"),
                extensions={STATE_FIELDS: ["add[*]", "remove[*]"]},
            )
        },
        "/v1/lists/{list_id}": {
            "delete": operation(
                "deleteList",
                "Delete a list and its entries.",
                response=ref("ListDeleted"),
                params=[_LIST],
                errors=(*WRITE_ERRORS, "404"),
            )
        },
    }


def _webhook_paths() -> dict[str, Any]:
    created = _id_links(
        {"GetWebhook": "getWebhook", "UpdateWebhook": "updateWebhook",
         "DeleteWebhook": "deleteWebhook", "ListDeliveries": "listDeliveries"},
        "webhook_id", "$response.body#/id",
    )  # fmt: skip
    replay = link(
        "replayDelivery",
        "The newest delivery of this page.",
        webhook_id="$request.path.webhook_id",
        delivery_id="$response.body#/data/0/id",
    )
    return {
        "/v1/webhooks": {
            "post": operation(
                "createWebhook",
                "Register an HTTPS endpoint; payloads are signed with its secret (whsec_…, "
                "generated when omitted). Private and loopback targets are refused; at most "
                f"{webhooks_engine.MAX_WEBHOOKS} webhooks per environment.",
                body="WebhookIn",
                response=ref("WebhookCreated"),
                status="201",
                links=created,
                # Past the most webhooks per environment, a creation is refused naming `url`.
                extensions={STATE_FIELDS: ["url"]},
                errors=WRITE_ERRORS,
            ),
            "get": operation(
                "listWebhooks",
                "Webhooks with lastDeliveryAt and successRate from real delivery attempts.",
                response=ref("WebhookPage"),
                params=(webhooks.STATUS, webhooks.LIMIT, OFFSET),
                errors=("400",),
            ),
        },
        "/v1/webhooks/{webhook_id}": {
            "get": operation(
                "getWebhook",
                "One webhook.",
                response=ref("WebhookOut"),
                params=[_HOOK],
                errors=("404",),
            ),
            "put": operation(
                "updateWebhook",
                "Change url, events, filters; status paused stops deliveries, active resumes.",
                body="WebhookPatch",
                response=ref("WebhookUpdated"),
                params=[_HOOK],
                errors=(*WRITE_ERRORS, "404"),
            ),
            "delete": operation(
                "deleteWebhook",
                "Delete a webhook; its pending deliveries are cancelled at once.",
                response=ref("WebhookDeleted"),
                params=[_HOOK],
                errors=(*WRITE_ERRORS, "404"),
            ),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "get": operation(
                "listDeliveries",
                "Recent deliveries of a webhook, newest first, with their attempts.",
                response=ref("DeliveryPage"),
                params=[_HOOK, webhooks.DELIVERY_STATUS.doc(), webhooks.LIMIT.doc()],
                errors=("400", "404"),
                links={"Replay": replay},
            )
        },
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {
            "post": operation(
                "replayDelivery",
                "Send a finished delivery again, same webhook-id, with a fresh retry schedule; "
                "a delivery still pending is refused (400).",
                response=ref("DeliveryOut"),
                status="202",
                params=[_HOOK, path("delivery_id", "The delivery id (msg_…).")],
                errors=(*WRITE_ERRORS, "400", "404"),
                extensions={STATE_FIELDS: ["deliveryId"]},
            )
        },
    }
