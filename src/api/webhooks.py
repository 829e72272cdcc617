"""Webhooks endpoints: create, list, read, update, delete; recent deliveries and replay."""

from __future__ import annotations

from typing import get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import codec
from engine.webhooks import Status as WebhookStatus
from engine.webhooks import WebhookIn, WebhookPatch

from .auth import authenticate
from .body import read_body
from .params import OFFSET, ChoiceParam, limit
from .responses import json_response
from .state import state_of

_create_decoder = msgspec.json.Decoder(WebhookIn)
_patch_decoder = msgspec.json.Decoder(WebhookPatch)
STATUS = ChoiceParam(
    name="status",
    description="Only webhooks of this status.",
    choices=get_args(WebhookStatus),
)
DELIVERY_STATUS = ChoiceParam(
    name="status",
    description="Only deliveries in this state.",
    choices=("pending", "delivered", "failed", "cancelled"),
)
LIMIT = limit(20, 100)


async def create_webhook(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = codec.decode(_create_decoder, await read_body(request, st.config.max_body_bytes))
    return json_response(await st.engine.create_webhook_async(key.tenant, body), 201)


async def list_webhooks(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    status, count, offset = STATUS.read(request), LIMIT.read(request), OFFSET.read(request)
    return json_response(st.engine.webhooks(key.tenant, status, count, offset))


async def get_webhook(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.webhook(key.tenant, request.path_params["webhook_id"]))


async def update_webhook(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    patch = codec.decode(_patch_decoder, await read_body(request, st.config.max_body_bytes))
    webhook_id = request.path_params["webhook_id"]
    return json_response(await st.engine.update_webhook_async(key.tenant, webhook_id, patch))


async def delete_webhook(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    webhook_id = request.path_params["webhook_id"]
    return json_response(await st.engine.delete_webhook_async(key.tenant, webhook_id))


async def list_deliveries(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    status, count = DELIVERY_STATUS.read(request), LIMIT.read(request)
    webhook_id = request.path_params["webhook_id"]
    return json_response(st.engine.webhook_deliveries(key.tenant, webhook_id, count, status))


async def replay_delivery(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    webhook_id, delivery_id = request.path_params["webhook_id"], request.path_params["delivery_id"]
    replayed = await st.engine.replay_delivery_async(key.tenant, webhook_id, delivery_id)
    return json_response(replayed, 202)


routes = [
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
    Route("/v1/webhooks/{webhook_id}", update_webhook, methods=["PUT"]),
    Route("/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    Route("/v1/webhooks/{webhook_id}/deliveries", list_deliveries, methods=["GET"]),
    Route(
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
        replay_delivery,
        methods=["POST"],
    ),
]
