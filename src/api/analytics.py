"""Analytics API endpoints: event ingestion, identify, usage and export."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from engine import profiles
from engine.errors import InvalidInput

from . import ingest_path
from .auth import authenticate
from .body import read_body
from .export_stream import snapshot_stream
from .params import ChoiceParam, InstantParam
from .responses import json_response
from .state import state_of


def as_endpoint(handler: ingest_path.Handler):
    async def endpoint(request: Request) -> Response:
        st = state_of(request)
        key = authenticate(request, st.engine, public_ok=True)
        body = await read_body(request, st.config.max_body_bytes)
        return (await handler(st, key, body, request.scope)).response()

    return endpoint


_FAR_FUTURE_US = 2**62


async def post_identify(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine, public_ok=True)
    body = await read_body(request, st.config.max_body_bytes)
    identify = profiles.decode_identify(body)
    result = await st.engine.identify_async(key.tenant, identify)
    return json_response(result)


async def get_usage(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.usage(key.workspace_id))


FROM = InstantParam(name="from", description="ISO 8601 start, inclusive (default: the beginning).")
TO = InstantParam(name="to", description="ISO 8601 end, exclusive (default: no end).")
FORMAT = ChoiceParam(
    name="format", description="ndjson (default) or parquet.", choices=("ndjson", "parquet")
)
EXPORT_PARAMS = (FROM, TO, FORMAT)


async def get_export(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    start, end = FROM.read(request, 0), TO.read(request, _FAR_FUTURE_US)
    if start > end:
        raise InvalidInput("'from' must not be after 'to'.", field="from")
    if FORMAT.read(request) == "parquet":
        data = await asyncio.to_thread(st.engine.export_parquet, key.tenant, start, end)
        return Response(
            data,
            media_type="application/vnd.apache.parquet",
            headers={"content-disposition": 'attachment; filename="events.parquet"'},
        )
    chunks = st.engine.export_ndjson(key.tenant, start, end)
    return StreamingResponse(
        snapshot_stream(chunks, st.config.export_idle_seconds, st.exports),
        media_type="application/x-ndjson",
    )


routes = [
    # Served by ingest_path.IngestionApp before Starlette; the routes keep the app complete.
    Route("/v1/events", as_endpoint(ingest_path.HANDLERS["/v1/events"]), methods=["POST"]),
    Route(
        "/v1/events/batch", as_endpoint(ingest_path.HANDLERS["/v1/events/batch"]), methods=["POST"]
    ),
    Route("/v1/identify", post_identify, methods=["POST"]),
    Route("/v1/usage", get_usage, methods=["GET"]),
    Route("/v1/export", get_export, methods=["GET"]),
]

benchmark_routes = [
    Route(path, as_endpoint(handler), methods=["POST"])
    for path, handler in ingest_path.BASELINE_HANDLERS.items()
]
