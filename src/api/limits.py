"""Which rate-limit class an endpoint counts against, and the headers every limited response
carries. docs/plans.md has the table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.rate_limits import Decision, LimitClass

SCOPE_KEY = "signalpost.ratelimit"
_INGEST = ("/v1/events", "/v1/events/batch", "/v1/agent/identify")
_ANALYTICS = ("/v1/identify", "/v1/usage", "/v1/export", "/v1/funnels", "/v1/cohorts",
              "/v1/auto-discovery")  # fmt: skip
_DEVICE_READ = ("/v1/events", "/v1/visitors", "/v1/analytics")
_MANAGE = ("/v1/rules", "/v1/lists", "/v1/webhooks")


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def kind_of(method: str, path: str) -> LimitClass | None:
    """None for endpoints that are never limited (health, documents, the agent script)."""
    if method == "POST" and path in _INGEST:
        return "ingest"
    if _under(path, _ANALYTICS):
        return "analytics"
    if _under(path, _DEVICE_READ):
        return "device_read"
    if _under(path, _MANAGE):
        return "device_manage"
    return None


def remember(scope: dict[str, Any], decision: Decision | None) -> None:
    # In the request's own scope, not scope["state"]: a server may share that dict between
    # requests (lifespan state), and one request's headers must not reach another's answer.
    if decision is not None:
        scope[SCOPE_KEY] = decision


def headers_of(scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    decision = scope.get(SCOPE_KEY)
    return decision.headers() if decision is not None else []


def with_headers(scope: dict[str, Any], send: Callable) -> Callable:
    """Wrap `send` so the response start carries the rate-limit headers of the request."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            extra = headers_of(scope)
            if extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
