"""The one place that turns exceptions into the JSON error body and an HTTP status."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine import errors
from engine.rate_limits import RateLimited

log = logging.getLogger("signalpost.api")

DOCS_BASE = "/docs/errors"

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[errors.SignalpostError], int], ...] = (
    (RateLimited, 429),
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
    retryAfter: int | None = None  # seconds, on 429


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


_encoder = msgspec.json.Encoder()


def error_body(
    status: int, code: str, message: str, field: str | None = None, retry: int | None = None
) -> bytes:
    detail = ErrorDetail(code, message, f"{DOCS_BASE}#{code}", field, retry)
    return _encoder.encode(ErrorBody(detail))


def render(exc: BaseException, method: str, path: str, request_id: str = "-") -> tuple[int, bytes]:
    """Status and body for any exception: the only place errors become HTTP."""
    if isinstance(exc, errors.SignalpostError):
        status = status_of(exc)
        if status >= 500:
            log.error("request %s %s failed: %s", method, path, exc.message)
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        return status, error_body(status, exc.code, exc.message, exc.field, retry)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return exc.status_code, error_body(exc.status_code, code, str(exc.detail))
    log.error("internal error on %s %s (request %s)", method, path, request_id, exc_info=exc)
    return 500, error_body(500, "internal_error", "Internal error. Retry with exponential backoff.")


def status_of(exc: errors.SignalpostError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def handle_error(request: Request, exc: Exception) -> Response:
    status, body = render(
        exc, request.method, request.url.path, request.headers.get("x-request-id", "-")
    )
    headers = getattr(exc, "headers", None)  # e.g. Allow on a 405
    return Response(body, status, headers=headers, media_type="application/json")


EXCEPTION_HANDLERS = {
    errors.SignalpostError: handle_error,
    HTTPException: handle_error,
    Exception: handle_error,
}
