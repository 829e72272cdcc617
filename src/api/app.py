"""Builds the Starlette application around an Engine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from engine import Engine

from . import analytics, system
from .config import ServerConfig
from .errors import EXCEPTION_HANDLERS
from .state import AppState


def create_app(config: ServerConfig | None = None, engine: Engine | None = None) -> Starlette:
    """With an engine, the app uses it and leaves closing it to the caller. Without one, the app
    opens the engine on `config.data_dir` at startup and closes it at shutdown."""
    config = config or ServerConfig()
    routes = [*system.routes, *analytics.routes]
    if config.benchmark_endpoints:
        routes += analytics.benchmark_routes

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if engine is not None:
            app.state.signalpost = AppState(engine, config)
            yield
            return
        owned = Engine.open(config.data_dir, config.engine)
        app.state.signalpost = AppState(owned, config)
        try:
            yield
        finally:
            owned.close()

    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    if engine is not None:
        app.state.signalpost = AppState(engine, config)
    return app
