"""Bearer-key authentication. Secret keys (plx_, sk_) reach everything; public keys (pk_) reach
only the write-only client endpoints."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from engine import Engine
from engine.errors import Forbidden, InvalidApiKey
from engine.rate_limits import RateLimited
from engine.workspaces import KeyInfo

from . import limits


def authenticate_header(
    header: str | None,
    engine: Engine,
    *,
    public_ok: bool = False,
    scope: dict[str, Any] | None = None,
) -> KeyInfo:
    """The key's workspace and environment. With `scope`, the request also counts against its
    plan's rate limit (the class from its method and path); the decision is kept in the scope
    for the response headers, and an exceeded limit raises RateLimited."""
    if not header:
        raise InvalidApiKey("Missing API key: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("The Authorization header must be 'Bearer <key>'.")
    kind = limits.kind_of(scope["method"], scope["path"]) if scope is not None else None
    try:
        info, decision = engine.authorize(token.strip(), kind)
    except RateLimited as exc:
        limits.remember(scope or {}, exc.decision)
        raise
    if scope is not None:
        limits.remember(scope, decision)
    if info.public and not public_ok:
        raise Forbidden("Public keys may only send events; use a secret key for this endpoint.")
    return info


def authenticate(request: Request, engine: Engine, *, public_ok: bool = False) -> KeyInfo:
    header = request.headers.get("authorization")
    return authenticate_header(header, engine, public_ok=public_ok, scope=request.scope)
