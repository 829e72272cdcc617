"""Builds the Starlette application around an Engine."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from engine import Engine

from . import (
    analytics,
    cohorts,
    device,
    device_analytics,
    discovery,
    funnels,
    ingest_path,
    limiter_timing,
    lists,
    routing,
    rules,
    system,
    webhooks,
)
from .config import ServerConfig
from .errors import EXCEPTION_HANDLERS
from .ingest_path import IngestionApp
from .state import AppState


def create_app(config: ServerConfig | None = None, engine: Engine | None = None) -> IngestionApp:
    """With an engine, the app uses it and leaves closing it to the caller. Without one, the app
    opens the engine on `config.data_dir` at startup and closes it at shutdown."""
    config = config or ServerConfig()
    routes = [
        *system.routes, *analytics.routes, *funnels.routes, *cohorts.routes, *device.routes,
        *device_analytics.routes, *discovery.routes,
        *lists.routes, *rules.routes, *webhooks.routes,
    ]  # fmt: skip
    if config.benchmark_endpoints:
        routes += analytics.benchmark_routes + device.benchmark_routes + limiter_timing.routes
    routes = routing.merged(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if engine is not None:
            app.state.signalpost = AppState(engine, config)
            yield
            return
        owned = Engine.open(config.data_dir, config.engine)
        if config.benchmark_endpoints:
            limiter_timing.install(owned)
        app.state.signalpost = AppState(owned, config)
        # Everything loaded so far (the engine, numpy, numba, the web stack: about 87,000
        # objects) lives as long as the worker. Frozen, it is left out of every garbage
        # collection: a full collection over it paused a worker for 57-77 ms under load,
        # which every request waiting in that worker paid.
        gc.freeze()
        try:
            yield
        finally:
            owned.close()

    # Browsers call the client endpoints from the customer's own origin with a public key.
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    if engine is not None:
        app.state.signalpost = AppState(engine, config)
    handlers = dict(ingest_path.HANDLERS)
    if config.benchmark_endpoints:
        handlers.update(ingest_path.BASELINE_HANDLERS)
    return IngestionApp(app, handlers)
