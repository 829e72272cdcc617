"""Signalpost's HTTP front end: a Starlette app over an `engine.Engine`, served by granian."""

from .app import create_app
from .config import ServerConfig, load_config

__all__ = ["ServerConfig", "create_app", "load_config"]
