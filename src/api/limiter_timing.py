"""Benchmark instrument: the time each worker spends in the rate limiter, measured in place.

With the benchmark endpoints on, the engine's limiter is wrapped so every check adds its own
duration to a per-process total; `GET /v1/_baseline/limiter` answers the total of the worker
that serves it. `benchmarks/load/limits.py` reads every worker's total after a fixed-rate run:
the limiter's cost per request inside the real server under that load.
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.rate_limits import Decision, LimitClass, Limiter

from .responses import json_response
from .state import state_of


class TimedLimiter:
    """A Limiter whose `check` (and the headers its decision adds) keeps a running total."""

    def __init__(self, inner: Limiter) -> None:
        self._inner = inner
        self.calls = 0
        self.ns = 0

    def check(
        self, workspace_id: str, plan: str, kind: LimitClass, now: float | None = None
    ) -> Decision | None:
        start = time.perf_counter_ns()
        decision = self._inner.check(workspace_id, plan, kind, now)
        if decision is not None:
            decision.headers()  # the response pays for these too
        self.ns += time.perf_counter_ns() - start
        self.calls += 1
        return decision

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install(engine: Any) -> None:
    if not isinstance(engine.limiter, TimedLimiter):
        engine.limiter = TimedLimiter(engine.limiter)


async def limiter_totals(request: Request) -> Response:
    limiter = state_of(request).engine.limiter
    calls, ns = (limiter.calls, limiter.ns) if isinstance(limiter, TimedLimiter) else (0, 0)
    return json_response({"pid": os.getpid(), "calls": calls, "ns": ns})


routes = [Route("/v1/_baseline/limiter", limiter_totals, methods=["GET"])]
