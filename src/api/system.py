"""Endpoints without authentication: health, the OpenAPI document and the error reference."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .openapi import document

_ERRORS_DOC = resources.files("api").joinpath("static/errors.md").read_bytes()


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def openapi(request: Request) -> Response:
    return Response(document(), media_type="application/json")


async def error_docs(request: Request) -> Response:
    return Response(_ERRORS_DOC, media_type="text/markdown; charset=utf-8")


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs/errors", error_docs, methods=["GET"]),
]
