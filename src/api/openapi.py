"""The OpenAPI 3.1 document: request and response schemas come from the same Structs the server
decodes and encodes with, and query parameters from the declarations the endpoints read them
with, so the document cannot drift from the code."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.config import EngineConfig

from . import analytics, device
from .openapi_device import device_paths
from .openapi_parts import INSTANT_ORDER, STATE_FIELDS, WRITE_ERRORS, json_content, operation, ref
from .openapi_queries import query_paths
from .openapi_schemas import components

_SECURITY_SCHEMES = {
    "secretKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A secret key (sk_live_, sk_test_, plx_live_, plx_test_): every endpoint.",
    },
    "publicKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A public key (pk_live_, pk_test_): only the endpoints tagged "
        "`public key`; any other answers 403.",
    },
}
_TAGS = [
    {"name": "public key", "description": "Accepts secret keys and public keys."},
    {"name": "secret key", "description": "Secret keys only; a public key answers 403."},
]


def _static(operation_id: str, summary: str, media_type: str) -> dict[str, Any]:
    return operation(
        operation_id,
        summary,
        auth=False,
        content={media_type: {"schema": {"type": "string"}}},
    )


def _analytics_paths(config: EngineConfig) -> dict[str, Any]:
    return {
        "/v1/events": {
            "get": operation(
                "listEvents",
                "Identification events, newest first, with filters and an opaque cursor.",
                response=ref("EventPage"),
                params=device.LIST_PARAMS,
                errors=("400",),
                extensions={STATE_FIELDS: ["cursor"], INSTANT_ORDER: [["after", "before"]]},
            ),
            "post": operation(
                "ingestEvent",
                "Ingest one behavioural event (durable before the answer).",
                body="EventIn",
                response=ref("IngestResult"),
                public=True,
                errors=WRITE_ERRORS,
                extensions={INSTANT_ORDER: [["timestamp", "sent_at"]]},
            ),
        },
        "/v1/events/batch": {
            "post": operation(
                "ingestBatch",
                f"Ingest 1 to {config.max_batch_events} events atomically; more answers 400 "
                "batch_too_large.",
                body="BatchIn",
                response=ref("IngestResult"),
                public=True,
                errors=WRITE_ERRORS,
                extensions={INSTANT_ORDER: [["timestamp", "sent_at"]]},
            )
        },
        "/v1/identify": {
            "post": operation(
                "identifyUser",
                "Merge traits into a user's profile (traits, set_once, unset).",
                body="IdentifyIn",
                response=ref("IdentifyResult"),
                public=True,
                errors=WRITE_ERRORS,
            )
        },
        "/v1/usage": {
            "get": operation(
                "getUsage",
                "Events ingested this calendar month; only live events are billable.",
                response=ref("Usage"),
            )
        },
        "/v1/export": {
            "get": operation(
                "exportEvents",
                "Stored events of the key's environment in timestamp order; `from` must not be "
                "after `to`.",
                content={
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "application/vnd.apache.parquet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
                params=analytics.EXPORT_PARAMS,
                errors=("400",),
                extensions={INSTANT_ORDER: [["from", "to"]]},
            )
        },
    }


def build(config: EngineConfig | None = None) -> dict[str, Any]:
    config = config or EngineConfig()
    paths: dict[str, Any] = {
        **_analytics_paths(config),
        **query_paths(),
        **device_paths(),
        "/agent.js": {
            "get": _static("agentScript", "The browser agent script.", "text/javascript")
        },
        "/demo": {"get": _static("demoPage", "A page that runs the agent.", "text/html")},
        "/healthz": {
            "get": operation(
                "health",
                "Liveness check.",
                auth=False,
                response={
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                },
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi", "This document.", auth=False, content=json_content({"type": "object"})
            )
        },
        "/docs/errors": {
            "get": _static("errorReference", "The error code reference.", "text/markdown")
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Signalpost", "version": "0.1.0"},
        "tags": _TAGS,
        "paths": paths,
        "components": {"schemas": components(config), "securitySchemes": _SECURITY_SCHEMES},
        "security": [{"secretKey": []}],
    }


_documents: dict[bytes, bytes] = {}


def document(config: EngineConfig | None = None) -> bytes:
    """The encoded document for a server with this engine configuration (built once)."""
    config = config or EngineConfig()
    key = msgspec.json.encode(config)
    if key not in _documents:
        _documents[key] = msgspec.json.encode(build(config))
    return _documents[key]
