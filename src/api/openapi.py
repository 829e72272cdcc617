"""The OpenAPI 3.1 document: request and response schemas come from the same Structs the server
decodes and encodes with, so the document cannot drift from the code."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from engine.events import BatchIn, EventIn, IngestResult
from engine.profiles import IdentifyIn, IdentifyResult
from engine.usage import Usage

from .errors import ErrorBody

_SCHEMAS = (EventIn, BatchIn, IngestResult, IdentifyIn, IdentifyResult, Usage, ErrorBody)

_ERRORS = {
    "400": "Invalid input; `error.field` names the offending field.",
    "401": "Missing, invalid or revoked API key.",
    "403": "A public key on an endpoint that needs a secret key.",
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
    response: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
    auth: bool = True,
    errors: tuple[str, ...] = ("400", "401", "403"),
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if body:
        op["requestBody"] = {"required": True, "content": _json_content(_ref(body))}
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


def build() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _SCHEMAS, ref_template="#/components/schemas/{name}"
    )
    write_errors = ("400", "401", "413", "507")
    paths: dict[str, Any] = {
        "/v1/events": {
            "post": _operation(
                "Ingest one behavioural event (durable before the answer).",
                body="EventIn",
                response=_ref("IngestResult"),
                public=True,
                errors=write_errors,
            )
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
