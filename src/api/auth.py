"""Bearer-key authentication. Secret keys (plx_, sk_) reach everything; public keys (pk_) reach
only the write-only client endpoints."""

from __future__ import annotations

from starlette.requests import Request

from engine import Engine
from engine.errors import Forbidden, InvalidApiKey
from engine.workspaces import KeyInfo


def authenticate_header(header: str | None, engine: Engine, *, public_ok: bool = False) -> KeyInfo:
    if not header:
        raise InvalidApiKey("Missing API key: send 'Authorization: Bearer <key>'.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("The Authorization header must be 'Bearer <key>'.")
    info = engine.authenticate(token.strip())
    if info.public and not public_ok:
        raise Forbidden("Public keys may only send events; use a secret key for this endpoint.")
    return info


def authenticate(request: Request, engine: Engine, *, public_ok: bool = False) -> KeyInfo:
    return authenticate_header(request.headers.get("authorization"), engine, public_ok=public_ok)
