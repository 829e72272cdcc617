"""JSON answers and query parameters (integers, instants, choices), shared by the endpoints."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import InvalidInput
from engine.timeutil import parse_instant

_encoder = msgspec.json.Encoder()


def json_response(value: object, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidInput(f"'{name}' must be an integer from {low} to {high}.", field=name)
    return value


_REQUIRED = object()


def instant_param(request: Request, name: str, default: Any = _REQUIRED) -> Any:
    """An ISO 8601 date or date-time query parameter in µs (UTC unless it says otherwise);
    `default` when absent, or a 400 naming it when it is required or malformed."""
    raw = request.query_params.get(name)
    if not raw:
        if default is _REQUIRED:
            raise InvalidInput(f"'{name}' is required (ISO 8601).", field=name)
        return default
    try:
        return parse_instant(raw)
    except ValueError:
        raise InvalidInput(f"'{name}' must be an ISO 8601 date or date-time.", field=name) from None


def choice_param(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise InvalidInput(f"'{name}' is one of {', '.join(choices)}.", field=name)
    return raw
