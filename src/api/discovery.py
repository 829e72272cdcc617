"""Auto-discovery: GET /v1/auto-discovery/results, POST /v1/auto-discovery/trigger and
GET /v1/auto-discovery/runs/{runId} (secret keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import authenticate
from .params import limit
from .responses import json_response
from .state import state_of

LIMIT = limit(20, 100, "Sequences, ")


async def results(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.discovery_results(key.tenant, LIMIT.read(request)))


async def trigger(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.trigger_discovery(key.tenant), 202)


async def run(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    run_id = request.path_params["run_id"]
    return json_response(st.engine.discovery_run(key.tenant, run_id, LIMIT.read(request)))


routes = [
    Route("/v1/auto-discovery/results", results, methods=["GET"]),
    Route("/v1/auto-discovery/trigger", trigger, methods=["POST"]),
    Route("/v1/auto-discovery/runs/{run_id}", run, methods=["GET"]),
]
