"""Funnel queries: POST /v1/funnels/query."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import funnels

from .auth import authenticate
from .body import read_body
from .responses import json_response
from .state import state_of


async def query_funnel(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    query = funnels.decode_query(await read_body(request, st.config.max_body_bytes))
    # A scan of many segments: off the event loop, so other requests keep flowing.
    result = await asyncio.to_thread(st.engine.funnel, key.tenant, query)
    return json_response(result)


routes = [Route("/v1/funnels/query", query_funnel, methods=["POST"])]
