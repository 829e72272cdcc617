"""Backtest of 1.28M identifications over 30 days beside a same-run baseline.

The store is built by writing segments directly (five compacted segments of 256k rows and a tail
of small ones, as compaction leaves them), not through 1.28M identifications. The baseline reads
and concatenates the columns the document's rule needs: the least any backtest must do.
"""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import pytest

from engine import Engine, EngineConfig, rules, velocity
from engine import identification as ident
from engine.backtest import BacktestIn
from engine.columns import encode_fixed, encode_var
from engine.lists import EntriesIn, ListIn
from engine.rule_store import RuleIn
from engine.segments import SCHEMAS, SegmentMeta, list_segments, read_columns, write_segment
from engine.timeutil import now_us

pytestmark = pytest.mark.benchmark(group="backtest")
ROWS = 1_280_000
BIG = 1 << 18
DAY = velocity.DAY_US
VISITORS = 100_000
RNG = np.random.default_rng(11)
DOCUMENT_RULE = {
    "operator": "AND",
    "rules": [
        {"field": "signals.bot.detected", "operator": "equals", "value": True},
        {"field": "event.type", "operator": "equals", "value": "registration"},
    ],
}
HEAVY_RULE = {
    "operator": "OR",
    "rules": [
        {"field": "ip.address", "operator": "in", "value": {"list": "bad_ips"}},
        {
            "operator": "AND",
            "rules": [
                {"field": "ip.country", "operator": "in", "value": ["RU", "KP", "IR"]},
                {"field": "scores.suspect", "operator": "gte", "value": 40},
                {"field": "device.browser", "operator": "contains", "value": "Headless"},
            ],
        },
        {"field": "visitorId", "operator": "in", "value": {"list": "blocked_devices"}},
    ],
}


class _Load:
    """Intern the strings and write the segments in one transaction."""

    def __init__(self, tenant, now):
        self.tenant, self.now = tenant, now

    def apply(self, ctx):
        p, txn, intern = self.tenant.prefix, ctx.txn, ctx.interner.intern
        for i in range(VISITORS):
            intern(txn, p, ident.VISITOR_KIND, f"pv_{i:013d}")
        types = [intern(txn, p, ident.EVENT_TYPE_KIND, t) for t in ("login", "registration", "")]
        countries = [intern(txn, p, ident.COUNTRY_KIND, c) for c in ("DE", "US", "FR", "RU", "")]
        browsers = [intern(txn, p, ident.BROWSER_KIND, b) for b in ("Chrome 121", "HeadlessChrome")]
        ts = np.sort(RNG.integers(self.now - 30 * DAY + 60_000_000, self.now - 60_000_000, ROWS))
        bot = RNG.random(ROWS) < 0.08
        cols = {
            "ts": ts,
            "visitor": RNG.zipf(1.3, ROWS) % VISITORS,
            "confidence": np.round(RNG.random(ROWS), 3),
            "signals": bot * ident.SIGNAL_BITS["bot"] + (RNG.random(ROWS) < 0.1) * 2,
            "suspect": RNG.integers(0, 100, ROWS),
            "event_type": RNG.choice(types, ROWS, p=[0.6, 0.3, 0.1]),
            "country": RNG.choice(countries, ROWS),
            "browser": RNG.choice(browsers, ROWS, p=[0.97, 0.03]),
            "found": RNG.integers(0, 2, ROWS),
        }
        ips = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}".encode() for i in range(50_000)]
        ip_rows = RNG.integers(0, len(ips), ROWS)
        schema = SCHEMAS["identifications"]
        bounds = [*range(0, 4 * BIG, BIG), *range(4 * BIG, ROWS, 1024), ROWS]
        for lo, hi in itertools.pairwise(bounds):
            encoded = {}
            for name, kind in schema.items():
                if name == "request":
                    stamps = enumerate(ts[lo:hi].tolist(), lo)
                    encoded[name] = encode_var(
                        [f"req_{t // 1_000_000}_{i:010x}".encode() for i, t in stamps]
                    )
                elif name == "ip":
                    encoded[name] = encode_var([ips[i] for i in ip_rows[lo:hi].tolist()])
                elif kind == "var":
                    encoded[name] = encode_var([b""] * (hi - lo))
                else:
                    values = cols[name][lo:hi] if name in cols else np.zeros(hi - lo)
                    encoded[name] = encode_fixed(values, kind)
            meta = SegmentMeta(hi - lo, int(ts[lo]), int(ts[hi - 1]), 1 if hi - lo == BIG else 0, 0)
            write_segment(txn, ctx.store, p, "identifications", encoded, meta)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    config = msgspec.convert({"compaction": {"enabled": False}}, EngineConfig)
    e = Engine.open(tmp_path_factory.mktemp("backtest"), config)
    ws = e.create_workspace("bench")
    tenant = e.authenticate(ws.keys.sk_live).tenant
    now = now_us()
    e.writer.run(_Load(tenant, now))
    for name, kind, entries in (
        ("bad_ips", "ip", [f"10.0.{i}.7" for i in range(200)]),
        ("blocked_devices", "visitor", [f"pv_{i:013d}" for i in range(0, VISITORS, 101)]),
        ("trusted_devices", "visitor", [f"pv_{i:013d}" for i in range(1, 500)]),
    ):
        made = e.create_list(tenant, ListIn(name=name, type=kind))
        e.patch_list(tenant, made.id, EntriesIn(add=entries))
    rule_ids = {}
    for name, conditions in (("document", DOCUMENT_RULE), ("heavy", HEAVY_RULE)):
        body = {"name": name, "conditions": conditions, "action": {"verdict": "block"}}
        rule_ids[name] = e.create_rule(tenant, msgspec.convert(body, RuleIn)).id
    e.backtest(tenant, rule_ids["document"])  # numba loads (or compiles) once, outside timing
    e.backtest(tenant, rule_ids["heavy"])
    yield e, tenant, rule_ids
    e.close()


def test_baseline_decode_the_rules_columns(benchmark, loaded):
    e, tenant, _ = loaded

    def decode():
        with e.store.read() as txn:
            parts = [
                read_columns(txn, e.store, tenant.prefix, "identifications", n,
                             ["ts", "visitor", "signals", "suspect", "event_type"])
                for n, _ in list_segments(txn, e.store, tenant.prefix, "identifications")
            ]  # fmt: skip
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    assert len(benchmark(decode)["ts"]) == ROWS


@pytest.mark.parametrize("rule", ["document", "heavy"])
def test_backtest_30_days_1_28m_events(benchmark, loaded, rule):
    e, tenant, rule_ids = loaded
    result = benchmark(e.backtest, tenant, rule_ids[rule], BacktestIn(days=30, sampleSize=5))
    assert result.totalEvents == ROWS and 0 < result.matchCount < ROWS
    benchmark.extra_info.update(matchCount=result.matchCount, estimatedFpr=result.estimatedFpr)


def test_reference_evaluator_10k_documents(benchmark):
    """What evaluating event documents one by one in Python costs: times 128 for 1.28M."""
    docs = [
        {"signals": {"bot": {"detected": bool(i % 12 == 0)}}, "event": {"type": "registration"}}
        for i in range(10_000)
    ]
    benchmark(lambda: sum(rules.evaluate(DOCUMENT_RULE, d, {}) for d in docs))
