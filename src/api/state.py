"""What every handler needs: the engine and the server configuration, held on the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request

from engine import Engine

from .config import ServerConfig


@dataclass(slots=True)
class AppState:
    engine: Engine
    config: ServerConfig
    # NDJSON exports running at once in this process (export_stream.py).
    exports: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.exports = asyncio.Semaphore(self.config.max_exports)


def state_of(request: Request) -> AppState:
    return request.app.state.signalpost
