"""Lists endpoints: create, list, add/remove entries, delete."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import codec
from engine.errors import InvalidInput
from engine.lists import EntriesIn, ListIn

from .auth import authenticate
from .body import read_body
from .responses import int_param, json_response
from .state import state_of

_list_decoder = msgspec.json.Decoder(ListIn)
_entries_decoder = msgspec.json.Decoder(EntriesIn)


async def create_list(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = codec.decode(_list_decoder, await read_body(request, st.config.max_body_bytes))
    return json_response(await st.engine.create_list_async(key.tenant, body), 201)


async def get_lists(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    kind = request.query_params.get("type")
    if kind is not None and kind not in ("visitor", "ip", "email"):
        raise InvalidInput("'type' must be visitor, ip or email.", field="type")
    limit = int_param(request, "limit", 100, 1, 100)
    offset = int_param(request, "offset", 0, 0, 1_000_000)
    return json_response(st.engine.lists(key.tenant, kind, limit, offset))


async def patch_entries(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = codec.decode(_entries_decoder, await read_body(request, st.config.max_body_bytes))
    result = await st.engine.patch_list_async(key.tenant, request.path_params["list_id"], body)
    return json_response(result)


async def delete_list(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(
        await st.engine.delete_list_async(key.tenant, request.path_params["list_id"])
    )


routes = [
    Route("/v1/lists", create_list, methods=["POST"]),
    Route("/v1/lists", get_lists, methods=["GET"]),
    Route("/v1/lists/{list_id}/entries", patch_entries, methods=["PATCH"]),
    Route("/v1/lists/{list_id}", delete_list, methods=["DELETE"]),
]
