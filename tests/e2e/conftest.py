"""Fixtures of the analytics e2e tests: the app over a real engine on a fresh data directory,
and real `signalpost serve` processes that are always killed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _analytics_support import Api, Stack
from _webhook_support import Hooks

from api import ServerConfig, create_app
from api.process import ServerProcess
from engine import Engine, EngineConfig


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """One engine on a fresh data directory, one `enterprise` workspace (never rate limited),
    the app and a client."""
    engine = Engine.open(tmp_path / "data", EngineConfig())
    ws = engine.create_workspace("e2e", "enterprise")
    app = create_app(ServerConfig(), engine=engine)
    api = Api(app)
    try:
        yield Stack(engine, ws, app, api)
    finally:
        api.close()
        engine.close()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test starts are appended here; whatever still runs is killed afterwards."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill(hard=True)


@pytest.fixture
def hooks(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Hooks]:
    """A webhook receiver and an engine that delivers to it; `@pytest.mark.webhooks(...)` on a
    test changes the webhook config."""
    marker = request.node.get_closest_marker("webhooks")
    stack = Hooks(tmp_path, **(marker.kwargs if marker else {}))
    try:
        yield stack
    finally:
        stack.close()
