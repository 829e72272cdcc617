"""Signalpost's embeddable engine: storage, ingestion and queries, with no HTTP in sight."""

from .config import CompactionConfig, EngineConfig, WebhookConfig
from .engine import Engine
from .errors import SignalpostError
from .events import EventIn, IngestResult
from .profiles import IdentifyIn
from .tenant import Tenant

__all__ = [
    "CompactionConfig",
    "Engine",
    "EngineConfig",
    "EventIn",
    "IdentifyIn",
    "IngestResult",
    "SignalpostError",
    "Tenant",
    "WebhookConfig",
]
