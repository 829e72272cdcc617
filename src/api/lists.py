"""Lists endpoints: create, list, add/remove entries, delete."""

from __future__ import annotations

from typing import get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import codec
from engine.lists import EntriesIn, ListIn, ListType

from .auth import authenticate
from .body import read_body
from .params import OFFSET, ChoiceParam, limit
from .responses import json_response
from .state import state_of

_list_decoder = msgspec.json.Decoder(ListIn)
_entries_decoder = msgspec.json.Decoder(EntriesIn)
TYPE = ChoiceParam(name="type", description="Only lists of this type.", choices=get_args(ListType))
LIMIT = limit(100, 100)


async def create_list(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = codec.decode(_list_decoder, await read_body(request, st.config.max_body_bytes))
    return json_response(await st.engine.create_list_async(key.tenant, body), 201)


async def get_lists(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    kind, count, offset = TYPE.read(request), LIMIT.read(request), OFFSET.read(request)
    return json_response(st.engine.lists(key.tenant, kind, count, offset))


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
