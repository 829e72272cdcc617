"""Monthly usage: events stored per environment, counted by the month they were received."""

from __future__ import annotations

import lmdb
import msgspec

from .events import usage_key
from .store import Store
from .tenant import Tenant
from .timeutil import iso


class EnvironmentUsage(msgspec.Struct):
    live: int
    test: int


class Usage(msgspec.Struct):
    workspace_id: str
    period: str
    period_start: str
    billable_events: int
    events: EnvironmentUsage


def read_usage(
    txn: lmdb.Transaction, store: Store, workspace_id: str, month: str, start_us: int
) -> Usage:
    counts = {}
    for env in ("live", "test"):
        raw = txn.get(usage_key(Tenant(workspace_id, env).prefix, month), db=store.usage)
        counts[env] = int.from_bytes(raw, "little") if raw else 0
    return Usage(
        workspace_id=workspace_id,
        period=month,
        period_start=iso(start_us),
        # Test-environment events never count toward the billable volume.
        billable_events=counts["live"],
        events=EnvironmentUsage(**counts),
    )
