"""Engine configuration: small frozen Structs with defaults that run with no file at all."""

from __future__ import annotations

from typing import Literal

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
    enabled: bool = True


class DiscoveryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    activation_days: int = 7
    retention_start_days: int = 7
    retention_end_days: int = 14
    # `scale`: run again when new events arrived, at most this often; `growth`: daily.
    continuous_seconds: int = 300
    daily_seconds: int = 86_400


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
