"""Device analytics: GET /v1/analytics/events and GET /v1/analytics/signals (secret keys)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.device_analytics import SIGNALS

from .auth import authenticate
from .responses import choice_param, instant_param, json_response
from .state import state_of


async def event_analytics(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    lo, hi = instant_param(request, "from"), instant_param(request, "to")
    group_by = choice_param(request, "groupBy", ("verdict", "platform", "country", "hour", "day",
                                                 "week"))  # fmt: skip
    verdict = choice_param(request, "verdict", ("allow", "challenge", "block"))
    # Scans of many rows: off the event loop.
    answer = await asyncio.to_thread(
        st.engine.identification_analytics, key.tenant, lo, hi, group_by, verdict
    )
    return json_response(answer)


async def signal_analytics(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    lo, hi = instant_param(request, "from"), instant_param(request, "to")
    group_by = choice_param(request, "groupBy", ("signal", "day", "week"))
    signal = choice_param(request, "signal", tuple(SIGNALS))
    answer = await asyncio.to_thread(
        st.engine.signal_analytics, key.tenant, lo, hi, group_by, signal
    )
    return json_response(answer)


routes = [
    Route("/v1/analytics/events", event_analytics, methods=["GET"]),
    Route("/v1/analytics/signals", signal_analytics, methods=["GET"]),
]
