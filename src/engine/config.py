"""Engine configuration: small frozen Structs with defaults that run with no file at all."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import msgspec

from .ipintel import IpConfig
from .rate_limits import RateLimitConfig

Durability = Literal["durable", "relaxed"]


class CompactionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Segments of the same level are merged once this many exist; a merged segment goes one
    # level up. Fan-out 16 keeps the write amplification near log16(rows per segment).
    fanout: int = 16
    # A segment at or above this many rows is final and never merged again.
    target_rows: int = 1 << 18
    # Upper bound of rows one merge step may copy, so that a step stays short.
    max_step_rows: int = 1 << 18
    # Pending rows (identifications) move into a segment at most this often per table: each
    # move is a write every request queues behind, and fewer, larger moves leave fewer small
    # segments to merge. Readers see pending rows, so nothing waits on it.
    drain_interval_seconds: Annotated[float, msgspec.Meta(ge=0, le=60)] = 1.0
    enabled: bool = True


class DiscoveryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    activation_days: int = 7
    retention_start_days: int = 7
    retention_end_days: int = 14
    # `scale`: run again when new events arrived, at most this often; `growth`: daily.
    continuous_seconds: int = 300
    daily_seconds: int = 86_400


class WebhookConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Plain http:// targets only for local development: payloads and signatures would travel
    # in clear text.
    allow_http: bool = False
    # Targets on loopback, private, link-local or other non-global addresses are refused, so
    # that a webhook cannot be used to reach the server's own network. Tests and local setups
    # may allow them.
    allow_private: bool = False
    # A PEM file of extra CA certificates trusted for deliveries, next to the system's.
    ca_bundle: str | None = None
    # Offsets in seconds from the first attempt at which each attempt is due: up to 24 hours.
    retry_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 86400)
    # Each retry moves by up to this fraction of its gap, so that receivers recovering from
    # an outage are not hit by every sender at the same instant.
    retry_jitter: float = 0.1
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0
    # Deliveries in flight per endpoint and in all: one slow receiver cannot stall the others.
    max_in_flight_per_endpoint: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    # Incoming-webhook URL used by `slack` rule side effects that name none.
    slack_default_url: str | None = None
    # The delivery worker writes to its delivery book at most once per interval: outcomes
    # gather, one commit for many deliveries.
    write_interval_seconds: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    # How often the delivery worker looks for due deliveries when it has nothing in flight.
    poll_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.05
    # Finished deliveries kept per endpoint for listing and replay.
    history_per_endpoint: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    # Whether this process may run the delivery worker (one process of a server runs it).
    deliver: bool = True
    # Seconds before this process first tries to become the delivery process: the workers of
    # `signalpost serve` stand by this long so that its dedicated delivery process goes first.
    standby_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 0.0

    def __post_init__(self) -> None:
        schedule = self.retry_schedule
        if not schedule or schedule[0] < 0 or any(b < a for a, b in itertools.pairwise(schedule)):
            raise ValueError("retry_schedule must be non-empty, non-negative and ascending")
        if not 0 <= self.retry_jitter <= 1:
            raise ValueError("retry_jitter must be between 0 and 1")


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Virtual address space reserved for the LMDB map; the file on disk only grows as pages are
    # written. Writes past it fail cleanly with StorageFull.
    max_size_bytes: int = 1 << 40
    # "durable": every acknowledged write is fsynced before the answer. "relaxed": the OS flushes
    # later, so an OS crash (not a process crash) may lose the last writes.
    durability: Durability = "durable"
    # How many waiting operations one group commit may take at most.
    max_group_ops: int = 4096
    # When the previous group commit held more than one operation, wait this long before the
    # next one so that it gathers more: fewer fsyncs per request under load, no cost when idle.
    group_wait_us: int = 300
    # insert_id repeats within this window are acknowledged but stored once.
    dedup_window_seconds: int = 7 * 24 * 3600
    # Events further in the future than this are refused.
    max_future_seconds: int = 24 * 3600
    max_properties_bytes: int = 32 * 1024
    max_batch_events: int = 500
    compaction: CompactionConfig = CompactionConfig()
    ip: IpConfig = IpConfig()
    # Cohorts with a sliding window (`last_days`) are evaluated in full again at most this often;
    # users touched by ingestion are re-evaluated within about a second regardless.
    cohort_refresh_seconds: int = 300
    discovery: DiscoveryConfig = DiscoveryConfig()
    rate_limits: RateLimitConfig = RateLimitConfig()
    webhooks: WebhookConfig = WebhookConfig()
