"""The one place that turns exceptions into the JSON error body and an HTTP status."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine import errors

log = logging.getLogger("signalpost.api")

DOCS_BASE = "/docs/errors"

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[errors.SignalpostError], int], ...] = (
    (errors.PayloadTooLarge, 413),
    (errors.InvalidInput, 400),
    (errors.InvalidApiKey, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.StorageFull, 507),
    (errors.StorageError, 503),
)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    docs: str
    field: str | None = None


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


_encoder = msgspec.json.Encoder()


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    body = ErrorBody(ErrorDetail(code, message, f"{DOCS_BASE}#{code}", field))
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def status_of(exc: errors.SignalpostError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def handle_engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.SignalpostError)
    status = status_of(exc)
    if status >= 500:
        log.error("request %s failed: %s", request.url.path, exc.message)
    return error_response(status, exc.code, exc.message, exc.field)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    request_id = request.headers.get("x-request-id", "-")
    log.exception(
        "internal error on %s %s (request %s)", request.method, request.url.path, request_id
    )
    return error_response(500, "internal_error", "Internal error. Retry with exponential backoff.")


EXCEPTION_HANDLERS = {
    errors.SignalpostError: handle_engine_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
