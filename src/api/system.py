"""Endpoints without authentication: health, the OpenAPI document and the error reference."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .openapi import document
from .state import state_of

_STATIC = resources.files("api").joinpath("static")
_ERRORS_DOC = _STATIC.joinpath("errors.md").read_bytes()
_AGENT_JS = _STATIC.joinpath("agent.js").read_bytes()
_DEMO_HTML = _STATIC.joinpath("demo.html").read_bytes()


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def openapi(request: Request) -> Response:
    return Response(document(state_of(request).config.engine), media_type="application/json")


async def error_docs(request: Request) -> Response:
    return Response(_ERRORS_DOC, media_type="text/markdown; charset=utf-8")


async def agent_js(request: Request) -> Response:
    return Response(
        _AGENT_JS,
        media_type="text/javascript; charset=utf-8",
        headers={"cache-control": "public, max-age=300", "access-control-allow-origin": "*"},
    )


async def demo(request: Request) -> Response:
    return Response(_DEMO_HTML, media_type="text/html; charset=utf-8")


routes = [
    Route("/agent.js", agent_js, methods=["GET"]),
    Route("/demo", demo, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs/errors", error_docs, methods=["GET"]),
]
