"""Cohorts: POST/GET /v1/cohorts, GET/DELETE /v1/cohorts/{id}, GET /v1/cohorts/{id}/members."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import cohort_store

from .auth import authenticate
from .body import read_body
from .responses import int_param, json_response
from .state import state_of


async def create_cohort(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = cohort_store.decode_request(await read_body(request, st.config.max_body_bytes))
    # The first evaluation scans events: off the event loop.
    created = await asyncio.to_thread(st.engine.create_cohort, key.tenant, body)
    return json_response(created, 201)


async def list_cohorts(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    limit = int_param(request, "limit", 20, 1, 100)
    offset = int_param(request, "offset", 0, 0, 1_000_000)
    return json_response(st.engine.cohorts(key.tenant, limit, offset))


async def get_cohort(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.cohort(key.tenant, request.path_params["cohort_id"]))


async def delete_cohort(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    cohort_id = request.path_params["cohort_id"]
    return json_response(await asyncio.to_thread(st.engine.delete_cohort, key.tenant, cohort_id))


async def cohort_members(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    limit = int_param(request, "limit", cohort_store.MAX_PAGE, 1, cohort_store.MAX_PAGE)
    page = st.engine.cohort_members(
        key.tenant, request.path_params["cohort_id"], limit, request.query_params.get("cursor")
    )
    return json_response(page)


routes = [
    Route("/v1/cohorts", create_cohort, methods=["POST"]),
    Route("/v1/cohorts", list_cohorts, methods=["GET"]),
    Route("/v1/cohorts/{cohort_id}", get_cohort, methods=["GET"]),
    Route("/v1/cohorts/{cohort_id}", delete_cohort, methods=["DELETE"]),
    Route("/v1/cohorts/{cohort_id}/members", cohort_members, methods=["GET"]),
]
