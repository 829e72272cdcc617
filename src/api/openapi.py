"""The OpenAPI 3.1 document: request and response schemas come from the same Structs the server
decodes and encodes with, so the document cannot drift from the code."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from engine.backtest import BacktestIn, BacktestResult
from engine.cohort_store import CohortIn, CohortOut, CohortPage, MembersPage
from engine.device import AgentRequest
from engine.device_analytics import EventsAnswer, SignalsAnswer
from engine.discovery_runs import RunAnswer
from engine.events import BatchIn, EventIn, IngestResult
from engine.funnels import FunnelQuery, FunnelResult
from engine.identification import AgentAnswer, IdentificationEvent
from engine.lists import EntriesIn, EntriesResult, ListDeleted, ListIn, ListOut, ListPage
from engine.outbox import DeliveryOut, DeliveryPage
from engine.profiles import IdentifyIn, IdentifyResult
from engine.rule_store import RuleDeleted, RuleIn, RuleOut, RulePatch, RuleWritten
from engine.usage import Usage
from engine.visitors import Deleted, EventPage, Visitor
from engine.webhooks import (
    WebhookCreated,
    WebhookDeleted,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
    WebhookUpdated,
)

from .errors import ErrorBody

_SCHEMAS = (
    EventIn,
    BatchIn,
    IngestResult,
    IdentifyIn,
    IdentifyResult,
    Usage,
    ErrorBody,
    AgentRequest,
    AgentAnswer,
    IdentificationEvent,
    EventPage,
    Visitor,
    Deleted,
    ListIn,
    ListOut,
    ListPage,
    EntriesIn,
    EntriesResult,
    ListDeleted,
    RuleIn,
    RulePatch,
    RuleOut,
    RuleWritten,
    RuleDeleted,
    FunnelQuery,
    FunnelResult,
    CohortIn,
    CohortOut,
    CohortPage,
    MembersPage,
    BacktestIn,
    BacktestResult,
    EventsAnswer,
    SignalsAnswer,
    RunAnswer,
    WebhookIn,
    WebhookPatch,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
    WebhookUpdated,
    WebhookDeleted,
    DeliveryOut,
    DeliveryPage,
)

_ERRORS = {
    "400": "Invalid input; `error.field` names the offending field.",
    "401": "Missing, invalid or revoked API key.",
    "403": "A public key on an endpoint that needs a secret key.",
    "404": "No such resource in the key's environment.",
    "413": "Body over 1 MB.",
    "507": "The store is full; nothing was stored.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(
    summary: str,
    *,
    body: str | None = None,
    body_required: bool = True,
    response: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
    auth: bool = True,
    errors: tuple[str, ...] = ("400", "401", "403"),
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if body:
        op["requestBody"] = {"required": body_required, "content": _json_content(_ref(body))}
    ok: dict[str, Any] = {"description": "OK"}
    if response:
        ok["content"] = _json_content(response)
    if content:
        ok["content"] = content
    op["responses"]["200"] = ok
    for code in errors:
        op["responses"][code] = {
            "description": _ERRORS[code],
            "content": _json_content(_ref("ErrorBody")),
        }
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    elif public:
        op["description"] = "Accepts secret keys (plx_, sk_) and public keys (pk_)."
    else:
        op["description"] = "Secret keys only (plx_, sk_); a public key answers 403."
    return op


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_PAGE_PARAMS = [
    _query("before", "ISO 8601: only events before this instant."),
    _query("after", "ISO 8601: only events after this instant."),
    _query("limit", "1 to 100, default 20."),
    _query("cursor", "nextCursor of the previous page."),
]


def _webhook_paths() -> dict[str, Any]:
    hook = _path("webhook_id", "The webhook id (whk_…).")
    return {
        "/v1/webhooks": {
            "post": _operation(
                "Register an HTTPS endpoint; payloads are signed with its secret (whsec_…, "
                "generated when omitted). Private and loopback targets are refused.",
                body="WebhookIn",
                response=_ref("WebhookCreated"),
            ),
            "get": _operation(
                "Webhooks with lastDeliveryAt and successRate from real delivery attempts.",
                response=_ref("WebhookPage"),
                params=[
                    _query("status", "active, paused or disabled."),
                    _query("limit", "1 to 100, default 20."),
                    _query("offset", "Default 0."),
                ],
            ),
        },
        "/v1/webhooks/{webhook_id}": {
            "get": _operation(
                "One webhook.",
                response=_ref("WebhookOut"),
                params=[hook],
                errors=("401", "403", "404"),
            ),
            "put": _operation(
                "Change url, events, filters; status paused stops deliveries, active resumes.",
                body="WebhookPatch",
                response=_ref("WebhookUpdated"),
                params=[hook],
                errors=("400", "401", "403", "404"),
            ),
            "delete": _operation(
                "Delete a webhook; its pending deliveries are cancelled at once.",
                response=_ref("WebhookDeleted"),
                params=[hook],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "get": _operation(
                "Recent deliveries of a webhook, newest first, with their attempts.",
                response=_ref("DeliveryPage"),
                params=[
                    hook,
                    _query("status", "pending, delivered, failed or cancelled."),
                    _query("limit", "1 to 100, default 20."),
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {
            "post": _operation(
                "Send a finished delivery again, same webhook-id, with a fresh retry schedule.",
                response=_ref("DeliveryOut"),
                params=[hook, _path("delivery_id", "The delivery id (msg_…).")],
                errors=("400", "401", "403", "404"),
            )
        },
    }


def build() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _SCHEMAS, ref_template="#/components/schemas/{name}"
    )
    write_errors = ("400", "401", "413", "507")
    paths: dict[str, Any] = {
        "/v1/events": {
            "get": _operation(
                "Identification events, newest first, with filters and an opaque cursor.",
                response=_ref("EventPage"),
                params=[
                    _query("visitorId", "Only this visitor's events."),
                    _query("verdict", "allow, challenge or block."),
                    _query("bot", "true or false."),
                    *_PAGE_PARAMS,
                ],
                errors=("400", "401", "403"),
            ),
            "post": _operation(
                "Ingest one behavioural event (durable before the answer).",
                body="EventIn",
                response=_ref("IngestResult"),
                public=True,
                errors=write_errors,
            ),
        },
        "/v1/events/batch": {
            "post": _operation(
                "Ingest 1 to 500 events atomically; more answers 400 batch_too_large.",
                body="BatchIn",
                response=_ref("IngestResult"),
                public=True,
                errors=write_errors,
            )
        },
        "/v1/identify": {
            "post": _operation(
                "Merge traits into a user's profile (traits, set_once, unset).",
                body="IdentifyIn",
                response=_ref("IdentifyResult"),
                public=True,
                errors=write_errors,
            )
        },
        "/v1/funnels/query": {
            "post": _operation(
                "Users through a sequence of 2 to 20 steps: per step, conversion and time to "
                "convert; optional breakdown by an event property or a user trait.",
                body="FunnelQuery",
                response=_ref("FunnelResult"),
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/cohorts": {
            "post": _operation(
                "Create a behavioural cohort (event counts, sequences, traits; AND/OR/NOT) and "
                "evaluate it; membership then follows ingestion.",
                body="CohortIn",
                response=_ref("CohortOut"),
            ),
            "get": _operation(
                "Cohorts with their size and computedAt.",
                response=_ref("CohortPage"),
                params=[_query("limit", "1 to 100, default 20."), _query("offset", "Default 0.")],
            ),
        },
        "/v1/cohorts/{cohort_id}": {
            "get": _operation(
                "One cohort.",
                response=_ref("CohortOut"),
                params=[_path("cohort_id", "coh_…")],
                errors=("401", "403", "404"),
            ),
            "delete": _operation(
                "Delete a cohort.",
                params=[_path("cohort_id", "coh_…")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/cohorts/{cohort_id}/members": {
            "get": _operation(
                "Member user ids, at most 500 per page; a cursor keeps reading the membership "
                "snapshot its first page read.",
                response=_ref("MembersPage"),
                params=[
                    _path("cohort_id", "coh_…"),
                    _query("limit", "1 to 500, default 500."),
                    _query("cursor", "nextCursor of the previous page."),
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/analytics/events": {
            "get": _operation(
                "Identification counts in [from, to), grouped by verdict, platform, country, "
                "hour, day or week.",
                response=_ref("EventsAnswer"),
                params=[
                    _query("from", "ISO 8601.", required=True),
                    _query("to", "ISO 8601.", required=True),
                    _query("groupBy", "verdict, platform, country, hour, day or week."),
                    _query("verdict", "allow, challenge or block."),
                ],
            )
        },
        "/v1/analytics/signals": {
            "get": _operation(
                "Smart Signal counts, rates and trends against the previous window.",
                response=_ref("SignalsAnswer"),
                params=[
                    _query("from", "ISO 8601.", required=True),
                    _query("to", "ISO 8601.", required=True),
                    _query("groupBy", "signal, day or week."),
                    _query("signal", "One signal name."),
                ],
            )
        },
        "/v1/auto-discovery/results": {
            "get": _operation(
                "The latest completed auto-discovery run: early behaviours ranked by how well "
                "they predict retention (phi), with support and significance.",
                response=_ref("RunAnswer"),
                params=[_query("limit", "Sequences, 1 to 100, default 20.")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/auto-discovery/trigger": {
            "post": _operation(
                "Queue a run (202); while one is queued or running, that one is answered.",
                response=_ref("RunAnswer"),
                errors=("401", "403"),
            )
        },
        "/v1/auto-discovery/runs/{run_id}": {
            "get": _operation(
                "One run, whatever its status.",
                response=_ref("RunAnswer"),
                params=[_path("run_id", "run_…"), _query("limit", "1 to 100, default 20.")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/usage": {
            "get": _operation(
                "Events ingested this calendar month; only live events are billable.",
                response=_ref("Usage"),
                errors=("401", "403"),
            )
        },
        "/v1/export": {
            "get": _operation(
                "Stored events of the key's environment in timestamp order.",
                content={
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "application/vnd.apache.parquet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
                params=[
                    _query("from", "ISO 8601 start, inclusive (default: the beginning)."),
                    _query("to", "ISO 8601 end, exclusive (default: no end)."),
                    _query("format", "ndjson (default) or parquet."),
                ],
            )
        },
        "/v1/agent/identify": {
            "post": _operation(
                "Identify the device running the browser agent (or a relayed mobile payload). "
                "A public key gets {requestId, visitorId, confidence, visitorFound}; a secret key "
                "gets the full event document and may send the `mobile` fields.",
                body="AgentRequest",
                response={"oneOf": [_ref("AgentAnswer"), _ref("IdentificationEvent")]},
                public=True,
                errors=write_errors,
            )
        },
        "/v1/events/{request_id}": {
            "get": _operation(
                "One identification event.",
                response=_ref("IdentificationEvent"),
                params=[_path("request_id", "The request id (req_…).")],
                errors=("401", "403", "404"),
            )
        },
        "/v1/visitors/{visitor_id}": {
            "get": _operation(
                "A visitor: first and last seen, visits, devices, linked accounts, lists.",
                response=_ref("Visitor"),
                params=[_path("visitor_id", "The visitor id (pv_…).")],
                errors=("401", "403", "404"),
            ),
            "delete": _operation(
                "Delete every event, profile, device record and list membership of a visitor.",
                response=_ref("Deleted"),
                params=[_path("visitor_id", "The visitor id (pv_…).")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/visitors/{visitor_id}/events": {
            "get": _operation(
                "A visitor's identifications, newest first.",
                response=_ref("EventPage"),
                params=[
                    _path("visitor_id", "The visitor id (pv_…)."),
                    *_PAGE_PARAMS,
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/rules": {
            "post": _operation(
                "Create a rule; it governs the next identification in every worker.",
                body="RuleIn",
                response=_ref("RuleWritten"),
                errors=("400", "401", "403"),
            ),
            "get": _operation(
                "Rules in priority order (summaries: condition operator and leaf count).",
                response={"type": "object"},
                params=[
                    _query("status", "live, monitor, draft or paused."),
                    _query("limit", "1 to 100, default 100."),
                    _query("offset", "Default 0."),
                ],
                errors=("400", "401", "403"),
            ),
        },
        "/v1/rules/{rule_id}": {
            "get": _operation(
                "One rule with its conditions, action and match statistics.",
                response=_ref("RuleOut"),
                params=[_path("rule_id", "The rule id (rul_…).")],
                errors=("401", "403", "404"),
            ),
            "put": _operation(
                "Update part of a rule; `sideEffects` replaces the existing list.",
                body="RulePatch",
                response=_ref("RuleWritten"),
                params=[_path("rule_id", "The rule id (rul_…).")],
                errors=("400", "401", "403", "404"),
            ),
            "delete": _operation(
                "Delete a rule; it stops being evaluated at once.",
                response=_ref("RuleDeleted"),
                params=[_path("rule_id", "The rule id (rul_…).")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/rules/{rule_id}/backtest": {
            "post": _operation(
                "Run a rule (any status) over the identifications of the last `days` (1 to 30, "
                "default 7): matches, total, rate, estimated false positive rate and up to "
                "`sampleSize` (0 to 100, default 10) matched events spread over the window. "
                "The body may be empty.",
                body="BacktestIn",
                body_required=False,
                response=_ref("BacktestResult"),
                params=[_path("rule_id", "The rule id (rul_…).")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/lists": {
            "post": _operation(
                "Create a list of visitor ids, IP addresses or emails (name unique).",
                body="ListIn",
                response=_ref("ListOut"),
                errors=("400", "401", "403"),
            ),
            "get": _operation(
                "The workspace environment's lists with their live entry counts.",
                response=_ref("ListPage"),
                params=[
                    _query("type", "visitor, ip or email."),
                    _query("limit", "1 to 100, default 100."),
                    _query("offset", "Default 0."),
                ],
                errors=("400", "401", "403"),
            ),
        },
        "/v1/lists/{list_id}/entries": {
            "patch": _operation(
                "Add and remove up to 1,000 entries atomically; one invalid entry changes nothing.",
                body="EntriesIn",
                response=_ref("EntriesResult"),
                params=[_path("list_id", "The list id (lst_…).")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/lists/{list_id}": {
            "delete": _operation(
                "Delete a list and its entries.",
                response=_ref("ListDeleted"),
                params=[_path("list_id", "The list id (lst_…).")],
                errors=("401", "403", "404"),
            )
        },
        **_webhook_paths(),
        "/agent.js": {"get": _operation("The browser agent script.", auth=False, errors=())},
        "/demo": {"get": _operation("A page that runs the agent.", auth=False, errors=())},
        "/healthz": {"get": _operation("Liveness check.", auth=False, errors=())},
        "/openapi.json": {"get": _operation("This document.", auth=False, errors=())},
        "/docs/errors": {"get": _operation("The error code reference.", auth=False, errors=())},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Signalpost", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


@functools.cache
def document() -> bytes:
    return msgspec.json.encode(build())
