"""The run's settings and the constants every part of the harness shares."""

from __future__ import annotations

from dataclasses import dataclass

ACKED, UNKNOWN, UNSENT, REFUSED = "acked", "unknown", "unsent", "refused"
EVENT_NAMES = ("signup", "view", "export", "share", "invite")
USERS = 150
PRIMARY = "/hook"
RETRY_SCHEDULE = (0, 0.3, 1, 2, 4, 8, 15, 30)
DELIVERY_TIMEOUT = 5.0
# How the writers are spread: one thread per kind, two for identifications.
WRITERS = ("events", "batches", "traits", "devices-a", "devices-b", "config")


@dataclass(frozen=True)
class CrashConfig:
    kills: int = 20
    seed: int = 0
    workers: int = 2
    # A kill comes after a seeded number of acknowledged writes in this range...
    min_acks: int = 60
    max_acks: int = 400
    # ...or, this often, within the first few: while the restarted server catches up.
    early_share: float = 0.15
    # Cohorts follow writes "within about a second" (docs/cohorts.md): after this long a pass
    # notes the refresh as late; the last pass waits `converge_seconds` before calling the
    # membership lost (past the compactor's 30 s tick).
    refresh_seconds: float = 3.0
    converge_seconds: float = 45.0
    settle_seconds: float = 90.0
    verbose: bool = False  # progress lines on stderr


class HarnessError(RuntimeError):
    pass
