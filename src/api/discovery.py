"""Auto-discovery: GET /v1/auto-discovery/results, POST /v1/auto-discovery/trigger and
GET /v1/auto-discovery/runs/{runId} (secret keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import authenticate
from .responses import int_param, json_response
from .state import state_of


async def results(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    limit = int_param(request, "limit", 20, 1, 100)
    return json_response(st.engine.discovery_results(key.tenant, limit))


async def trigger(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.trigger_discovery(key.tenant), 202)


async def run(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    limit = int_param(request, "limit", 20, 1, 100)
    return json_response(st.engine.discovery_run(key.tenant, request.path_params["run_id"], limit))


routes = [
    Route("/v1/auto-discovery/results", results, methods=["GET"]),
    Route("/v1/auto-discovery/trigger", trigger, methods=["POST"]),
    Route("/v1/auto-discovery/runs/{run_id}", run, methods=["GET"]),
]
