"""Cohorts: POST/GET /v1/cohorts, GET/DELETE /v1/cohorts/{id}, GET /v1/cohorts/{id}/members."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import cohort_store

from .auth import authenticate
from .body import read_body
from .params import OFFSET, TextParam, limit
from .responses import json_response
from .state import state_of

LIMIT = limit(20, 100)
MEMBERS_LIMIT = limit(cohort_store.MAX_PAGE, cohort_store.MAX_PAGE)
CURSOR = TextParam(
    name="cursor",
    description="nextCursor of the previous page.",
    max_length=200,
    pattern=cohort_store.CURSOR_PATTERN,
)


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
    count, offset = LIMIT.read(request), OFFSET.read(request)
    return json_response(st.engine.cohorts(key.tenant, count, offset))


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
    cohort_id, count = request.path_params["cohort_id"], MEMBERS_LIMIT.read(request)
    page = st.engine.cohort_members(key.tenant, cohort_id, count, CURSOR.read(request))
    return json_response(page)


routes = [
    Route("/v1/cohorts", create_cohort, methods=["POST"]),
    Route("/v1/cohorts", list_cohorts, methods=["GET"]),
    Route("/v1/cohorts/{cohort_id}", get_cohort, methods=["GET"]),
    Route("/v1/cohorts/{cohort_id}", delete_cohort, methods=["DELETE"]),
    Route("/v1/cohorts/{cohort_id}/members", cohort_members, methods=["GET"]),
]
