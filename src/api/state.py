"""What every handler needs: the engine and the server configuration, held on the app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from engine import Engine

from .config import ServerConfig


@dataclass(slots=True)
class AppState:
    engine: Engine
    config: ServerConfig


def state_of(request: Request) -> AppState:
    return request.app.state.signalpost
