"""The hot paths as plain ASGI: POST /v1/events, /v1/events/batch and /v1/agent/identify.

These endpoints carry nearly all of the traffic. Served through Starlette's request objects
and middleware they cost about a third more CPU per request (measured in benchmarks/README.md),
so the outermost ASGI callable answers them directly and hands every other request to the
Starlette app. Errors still go through `errors.render`, the one place that shapes error bodies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.datastructures import Headers

from engine import events
from engine.errors import InvalidInput, PayloadTooLarge
from engine.timeutil import now_us
from engine.workspaces import KeyInfo

from . import device, limits
from .auth import authenticate_header
from .errors import render
from .responses import Reply
from .state import AppState

_encoder = msgspec.json.Encoder()
Handler = Callable[[AppState, KeyInfo, bytes, dict[str, Any]], Awaitable[Reply]]


async def _event(st: AppState, key: KeyInfo, body: bytes, scope: dict[str, Any]) -> Reply:
    event = events.decode_event(body)
    return Reply(_encoder.encode(await st.engine.ingest(key.tenant, [event], decoded=True)))


async def _batch(st: AppState, key: KeyInfo, body: bytes, scope: dict[str, Any]) -> Reply:
    batch = events.decode_batch(body, st.engine.config)
    result = await st.engine.ingest(key.tenant, batch, batch=True, decoded=True)
    return Reply(_encoder.encode(result))


async def _discard_event(st: AppState, key: KeyInfo, body: bytes, scope: dict[str, Any]) -> Reply:
    """Benchmark baseline: all the work of POST /v1/events except storing."""
    events.prepare(events.decode_event(body), now_us(), st.engine.config)
    return Reply(_encoder.encode(events.IngestResult(accepted=1, stored=0, deduplicated=0)))


async def _discard_batch(st: AppState, key: KeyInfo, body: bytes, scope: dict[str, Any]) -> Reply:
    batch = events.decode_batch(body, st.engine.config)
    events.prepare_batch(batch, now_us(), st.engine.config)
    result = events.IngestResult(accepted=len(batch), stored=0, deduplicated=0)
    return Reply(_encoder.encode(result))


async def _identify(st: AppState, key: KeyInfo, body: bytes, scope: dict[str, Any]) -> Reply:
    client = scope.get("client")
    peer = client[0] if client else "0.0.0.0"
    secure = scope.get("scheme") == "https"
    return await device.identify(st, key, body, peer, Headers(scope=scope), secure=secure)


HANDLERS: dict[str, Handler] = {
    "/v1/events": _event,
    "/v1/events/batch": _batch,
    "/v1/agent/identify": _identify,
}
BASELINE_HANDLERS: dict[str, Handler] = {
    "/v1/_baseline/events": _discard_event,
    "/v1/_baseline/events/batch": _discard_batch,
}


def _headers(scope: dict[str, Any]) -> tuple[str | None, int | None, bool]:
    """The Authorization header; the body length the request announces (0 when it announces
    none, None for a chunked body or a Content-Length that is not a number); and whether the
    Content-Length was not a number. One pass over the headers."""
    auth, length, chunked, malformed = None, 0, False, False
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value.decode("latin-1")
        elif name == b"content-length":
            malformed = not value.isdigit()
            length = None if malformed else int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return auth, None if chunked else length, malformed


async def _read_body(receive: Callable, length: int | None, limit: int) -> bytes:
    if length is not None and length > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("The client disconnected before sending the whole body.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise InvalidInput("The request body is empty; send a JSON object.")
    return body


# A request refused before its body was read (a bad key, a rate limit) still has its body on
# the connection. Answering at once lets the body arrive after the answer, and the server then
# closes the connection, so a client's next request on it fails. Small bodies are read and
# dropped first; for larger ones the answer says the connection closes.
_DISCARD_LIMIT = 64 * 1024


async def _discard_body(receive: Callable, length: int | None) -> bool:
    """Read and drop the rest of the request body if it is small; whether the connection
    stays usable."""
    if length is None or length > _DISCARD_LIMIT:
        return False
    read = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        read += len(message.get("body", b""))
        if read > _DISCARD_LIMIT:
            return False
        if not message.get("more_body", False):
            return True


class _UnreadBody:
    """The request body as read so far. An answer that starts before the body was read (an
    error raised first, on the hot path or in the Starlette app) reads and drops what is left
    of a small body, or says the connection closes (`settle`)."""

    def __init__(self, receive: Callable, length: int | None) -> None:
        self._receive = receive
        self._length = length
        self._done = length == 0

    async def receive(self) -> dict[str, Any]:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._done = True
        return message

    async def settle(self) -> bool:
        """Before an answer: read and drop what is left of a small body. Whether the
        connection stays usable (False: the answer should say it closes)."""
        if self._done:
            return True
        self._done = True
        return await _discard_body(self._receive, self._length)

    def guard(self, send: Callable) -> Callable:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not await self.settle():
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        return sending


class IngestionApp:
    """Outermost ASGI callable: the hot path here, everything else to the Starlette app."""

    def __init__(self, app: Starlette, handlers: dict[str, Handler]) -> None:
        self.app = app
        self.handlers = handlers

    # Tests and tools look at the Starlette app's routes and state through this object.
    @property
    def routes(self) -> list:
        return self.app.routes

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        handler = None
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.handlers.get(scope["path"])
        if handler is None:
            if scope["type"] == "http":
                body = _UnreadBody(receive, _headers(scope)[1])
                receive, send = body.receive, body.guard(send)
            await self.app(scope, receive, limits.with_headers(scope, send))
            return
        st: AppState = self.app.state.signalpost
        auth, length, malformed = _headers(scope)
        request_body = _UnreadBody(receive, length)
        extra: list[tuple[bytes, bytes]] = []
        try:
            if malformed:
                raise InvalidInput("Content-Length is not a number.")
            key = authenticate_header(auth, st.engine, public_ok=True, scope=scope)
            body = await _read_body(request_body.receive, length, st.config.max_body_bytes)
            status, (payload, answer_headers) = 200, await handler(st, key, body, scope)
            extra.extend(answer_headers)
        except Exception as exc:
            status, payload = render(exc, "POST", scope["path"])
            if not await request_body.settle():
                extra.append((b"connection", b"close"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # Browsers send events cross-origin with a public key.
                    (b"access-control-allow-origin", b"*"),
                    *limits.headers_of(scope),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
