"""The OpenAPI 3.1 document: request and response schemas come from the same Structs the server
decodes and encodes with, so the document cannot drift from the code."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from engine.backtest import BacktestIn, BacktestResult
from engine.cohort_store import CohortIn, CohortOut, CohortPage, MembersPage
from engine.delivery_book import DeliveryOut, DeliveryPage
from engine.device import AgentRequest
from engine.device_analytics import EventsAnswer, SignalsAnswer
from engine.discovery_runs import RunAnswer
from engine.events import BatchIn, EventIn, IngestResult
from engine.funnels import FunnelQuery, FunnelResult
from engine.identification import AgentAnswer, IdentificationEvent
from engine.lists import EntriesIn, EntriesResult, ListDeleted, ListIn, ListOut, ListPage
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
from .openapi_parts import operation, path, query, ref
from .openapi_queries import query_paths

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

_PAGE_PARAMS = [
    query("before", "ISO 8601: only events before this instant."),
    query("after", "ISO 8601: only events after this instant."),
    query("limit", "1 to 100, default 20."),
    query("cursor", "nextCursor of the previous page."),
]


def _webhook_paths() -> dict[str, Any]:
    hook = path("webhook_id", "The webhook id (whk_…).")
    return {
        "/v1/webhooks": {
            "post": operation(
                "Register an HTTPS endpoint; payloads are signed with its secret (whsec_…, "
                "generated when omitted). Private and loopback targets are refused.",
                body="WebhookIn",
                response=ref("WebhookCreated"),
            ),
            "get": operation(
                "Webhooks with lastDeliveryAt and successRate from real delivery attempts.",
                response=ref("WebhookPage"),
                params=[
                    query("status", "active, paused or disabled."),
                    query("limit", "1 to 100, default 20."),
                    query("offset", "Default 0."),
                ],
            ),
        },
        "/v1/webhooks/{webhook_id}": {
            "get": operation(
                "One webhook.",
                response=ref("WebhookOut"),
                params=[hook],
                errors=("401", "403", "404"),
            ),
            "put": operation(
                "Change url, events, filters; status paused stops deliveries, active resumes.",
                body="WebhookPatch",
                response=ref("WebhookUpdated"),
                params=[hook],
                errors=("400", "401", "403", "404"),
            ),
            "delete": operation(
                "Delete a webhook; its pending deliveries are cancelled at once.",
                response=ref("WebhookDeleted"),
                params=[hook],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "get": operation(
                "Recent deliveries of a webhook, newest first, with their attempts.",
                response=ref("DeliveryPage"),
                params=[
                    hook,
                    query("status", "pending, delivered, failed or cancelled."),
                    query("limit", "1 to 100, default 20."),
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {
            "post": operation(
                "Send a finished delivery again, same webhook-id, with a fresh retry schedule.",
                response=ref("DeliveryOut"),
                params=[hook, path("delivery_id", "The delivery id (msg_…).")],
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
            "get": operation(
                "Identification events, newest first, with filters and an opaque cursor.",
                response=ref("EventPage"),
                params=[
                    query("visitorId", "Only this visitor's events."),
                    query("verdict", "allow, challenge or block."),
                    query("bot", "true or false."),
                    *_PAGE_PARAMS,
                ],
                errors=("400", "401", "403"),
            ),
            "post": operation(
                "Ingest one behavioural event (durable before the answer).",
                body="EventIn",
                response=ref("IngestResult"),
                public=True,
                errors=write_errors,
            ),
        },
        "/v1/events/batch": {
            "post": operation(
                "Ingest 1 to 500 events atomically; more answers 400 batch_too_large.",
                body="BatchIn",
                response=ref("IngestResult"),
                public=True,
                errors=write_errors,
            )
        },
        "/v1/identify": {
            "post": operation(
                "Merge traits into a user's profile (traits, set_once, unset).",
                body="IdentifyIn",
                response=ref("IdentifyResult"),
                public=True,
                errors=write_errors,
            )
        },
        **query_paths(),
        "/v1/usage": {
            "get": operation(
                "Events ingested this calendar month; only live events are billable.",
                response=ref("Usage"),
                errors=("401", "403"),
            )
        },
        "/v1/export": {
            "get": operation(
                "Stored events of the key's environment in timestamp order.",
                content={
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "application/vnd.apache.parquet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
                params=[
                    query("from", "ISO 8601 start, inclusive (default: the beginning)."),
                    query("to", "ISO 8601 end, exclusive (default: no end)."),
                    query("format", "ndjson (default) or parquet."),
                ],
            )
        },
        "/v1/agent/identify": {
            "post": operation(
                "Identify the device running the browser agent (or a relayed mobile payload). "
                "A public key gets {requestId, visitorId, confidence, visitorFound}; a secret key "
                "gets the full event document and may send the `mobile` fields.",
                body="AgentRequest",
                response={"oneOf": [ref("AgentAnswer"), ref("IdentificationEvent")]},
                public=True,
                errors=write_errors,
            )
        },
        "/v1/events/{request_id}": {
            "get": operation(
                "One identification event.",
                response=ref("IdentificationEvent"),
                params=[path("request_id", "The request id (req_…).")],
                errors=("401", "403", "404"),
            )
        },
        "/v1/visitors/{visitor_id}": {
            "get": operation(
                "A visitor: first and last seen, visits, devices, linked accounts, lists.",
                response=ref("Visitor"),
                params=[path("visitor_id", "The visitor id (pv_…).")],
                errors=("401", "403", "404"),
            ),
            "delete": operation(
                "Delete every event, profile, device record and list membership of a visitor.",
                response=ref("Deleted"),
                params=[path("visitor_id", "The visitor id (pv_…).")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/visitors/{visitor_id}/events": {
            "get": operation(
                "A visitor's identifications, newest first.",
                response=ref("EventPage"),
                params=[
                    path("visitor_id", "The visitor id (pv_…)."),
                    *_PAGE_PARAMS,
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/rules": {
            "post": operation(
                "Create a rule; it governs the next identification in every worker.",
                body="RuleIn",
                response=ref("RuleWritten"),
                errors=("400", "401", "403"),
            ),
            "get": operation(
                "Rules in priority order (summaries: condition operator and leaf count).",
                response={"type": "object"},
                params=[
                    query("status", "live, monitor, draft or paused."),
                    query("limit", "1 to 100, default 100."),
                    query("offset", "Default 0."),
                ],
                errors=("400", "401", "403"),
            ),
        },
        "/v1/rules/{rule_id}": {
            "get": operation(
                "One rule with its conditions, action and match statistics.",
                response=ref("RuleOut"),
                params=[path("rule_id", "The rule id (rul_…).")],
                errors=("401", "403", "404"),
            ),
            "put": operation(
                "Update part of a rule; `sideEffects` replaces the existing list.",
                body="RulePatch",
                response=ref("RuleWritten"),
                params=[path("rule_id", "The rule id (rul_…).")],
                errors=("400", "401", "403", "404"),
            ),
            "delete": operation(
                "Delete a rule; it stops being evaluated at once.",
                response=ref("RuleDeleted"),
                params=[path("rule_id", "The rule id (rul_…).")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/rules/{rule_id}/backtest": {
            "post": operation(
                "Run a rule (any status) over the identifications of the last `days` (1 to 30, "
                "default 7): matches, total, rate, estimated false positive rate and up to "
                "`sampleSize` (0 to 100, default 10) matched events spread over the window. "
                "The body may be empty.",
                body="BacktestIn",
                body_required=False,
                response=ref("BacktestResult"),
                params=[path("rule_id", "The rule id (rul_…).")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/lists": {
            "post": operation(
                "Create a list of visitor ids, IP addresses or emails (name unique).",
                body="ListIn",
                response=ref("ListOut"),
                errors=("400", "401", "403"),
            ),
            "get": operation(
                "The workspace environment's lists with their live entry counts.",
                response=ref("ListPage"),
                params=[
                    query("type", "visitor, ip or email."),
                    query("limit", "1 to 100, default 100."),
                    query("offset", "Default 0."),
                ],
                errors=("400", "401", "403"),
            ),
        },
        "/v1/lists/{list_id}/entries": {
            "patch": operation(
                "Add and remove up to 1,000 entries atomically; one invalid entry changes nothing.",
                body="EntriesIn",
                response=ref("EntriesResult"),
                params=[path("list_id", "The list id (lst_…).")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/lists/{list_id}": {
            "delete": operation(
                "Delete a list and its entries.",
                response=ref("ListDeleted"),
                params=[path("list_id", "The list id (lst_…).")],
                errors=("401", "403", "404"),
            )
        },
        **_webhook_paths(),
        "/agent.js": {"get": operation("The browser agent script.", auth=False, errors=())},
        "/demo": {"get": operation("A page that runs the agent.", auth=False, errors=())},
        "/healthz": {"get": operation("Liveness check.", auth=False, errors=())},
        "/openapi.json": {"get": operation("This document.", auth=False, errors=())},
        "/docs/errors": {"get": operation("The error code reference.", auth=False, errors=())},
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
