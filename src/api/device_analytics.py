"""Device analytics: GET /v1/analytics/events and GET /v1/analytics/signals (secret keys)."""

from __future__ import annotations

import asyncio
from typing import get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.device_analytics import SIGNALS
from engine.rules import Verdict

from .auth import authenticate
from .params import ChoiceParam, InstantParam
from .responses import json_response
from .state import state_of

FROM = InstantParam(name="from", description="ISO 8601 start, inclusive.", required=True)
TO = InstantParam(name="to", description="ISO 8601 end, exclusive; after `from`.", required=True)
EVENTS_GROUP_BY = ChoiceParam(
    name="groupBy",
    description="Aggregation dimension.",
    choices=("verdict", "platform", "country", "hour", "day", "week"),
)
VERDICT = ChoiceParam(
    name="verdict",
    description="Only events of this verdict.",
    choices=get_args(Verdict),
)
SIGNALS_GROUP_BY = ChoiceParam(
    name="groupBy", description="Aggregation dimension.", choices=("signal", "day", "week")
)
SIGNAL = ChoiceParam(name="signal", description="Only this signal.", choices=tuple(SIGNALS))
EVENTS_PARAMS = (FROM, TO, EVENTS_GROUP_BY, VERDICT)
SIGNALS_PARAMS = (FROM, TO, SIGNALS_GROUP_BY, SIGNAL)


async def event_analytics(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    lo, hi = FROM.read(request), TO.read(request)
    group_by, verdict = EVENTS_GROUP_BY.read(request), VERDICT.read(request)
    # Scans of many rows: off the event loop.
    answer = await asyncio.to_thread(
        st.engine.identification_analytics, key.tenant, lo, hi, group_by, verdict
    )
    return json_response(answer)


async def signal_analytics(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    lo, hi = FROM.read(request), TO.read(request)
    group_by, signal = SIGNALS_GROUP_BY.read(request), SIGNAL.read(request)
    answer = await asyncio.to_thread(
        st.engine.signal_analytics, key.tenant, lo, hi, group_by, signal
    )
    return json_response(answer)


routes = [
    Route("/v1/analytics/events", event_analytics, methods=["GET"]),
    Route("/v1/analytics/signals", signal_analytics, methods=["GET"]),
]
