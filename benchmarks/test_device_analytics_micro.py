"""Device analytics over 10M identifications (30 days) beside a same-run baseline.

The store is built by writing compacted segments directly (only the columns these queries read).
The baseline reads and concatenates the timestamps and one grouped column: the least a grouped
count must do. Budget: 300 ms per query.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine import Engine, EngineConfig, velocity
from engine import identification as ident
from engine.columns import encode_fixed
from engine.segments import SegmentMeta, list_segments, read_columns, write_segment
from engine.timeutil import now_us

pytestmark = pytest.mark.benchmark(group="device-analytics")
ROWS = 10_000_000
STEP = 1 << 18
DAY = velocity.DAY_US
RNG = np.random.default_rng(5)


class _Load:
    def __init__(self, tenant, now):
        self.tenant, self.now = tenant, now

    def apply(self, ctx):
        p, txn, intern = self.tenant.prefix, ctx.txn, ctx.interner.intern
        countries = [intern(txn, p, ident.COUNTRY_KIND, c) for c in ("DE", "US", "FR", "BR", "")]
        platforms = [intern(txn, p, ident.PLATFORM_KIND, c) for c in ("Windows", "macOS", "iOS")]
        ts = np.sort(RNG.integers(self.now - 30 * DAY, self.now - 1, ROWS))
        for lo in range(0, ROWS, STEP):
            hi = min(lo + STEP, ROWS)
            n = hi - lo
            cols = {
                "ts": encode_fixed(ts[lo:hi], "i8"),
                "visitor": encode_fixed(RNG.integers(0, 1_000_000, n), "u4"),
                "verdict": encode_fixed(RNG.choice([1, 2, 3], n, p=[0.92, 0.04, 0.04]), "u4"),
                "country": encode_fixed(RNG.choice(countries, n), "u4"),
                "platform": encode_fixed(RNG.choice(platforms, n), "u4"),
                "signals": encode_fixed(RNG.integers(0, 512, n), "u4"),
            }
            write_segment(txn, ctx.store, p, "identifications", cols,
                          SegmentMeta(n, int(ts[lo]), int(ts[hi - 1]), 1, 0))  # fmt: skip


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    config = msgspec.convert({"compaction": {"enabled": False}}, EngineConfig)
    e = Engine.open(tmp_path_factory.mktemp("analytics"), config)
    ws = e.create_workspace("bench")
    tenant = e.authenticate(ws.keys.sk_live).tenant
    now = now_us()
    e.writer.run(_Load(tenant, now))
    yield e, tenant, now - 30 * DAY, now
    e.close()


def test_baseline_read_ts_and_one_column(benchmark, loaded):
    e, tenant, _, _ = loaded

    def read():
        with e.store.read() as txn:
            parts = [
                read_columns(txn, e.store, tenant.prefix, "identifications", n, ["ts", "verdict"])
                for n, _ in list_segments(txn, e.store, tenant.prefix, "identifications")
            ]
            return {k: np.concatenate([p[k] for p in parts]) for k in ("ts", "verdict")}

    assert len(benchmark(read)["ts"]) == ROWS


@pytest.mark.parametrize("group_by", ["verdict", "country", "day"])
def test_events_grouped(benchmark, loaded, group_by):
    e, tenant, lo, hi = loaded
    answer = benchmark(e.identification_analytics, tenant, lo, hi + 1, group_by, None)
    assert answer.total == ROWS and sum(g["count"] for g in answer.groups) == ROWS


def test_signals_with_trend(benchmark, loaded):
    e, tenant, lo, hi = loaded
    answer = benchmark(e.signal_analytics, tenant, lo, hi + 1, "signal", None)
    assert answer.total == ROWS and len(answer.signals) == 9
