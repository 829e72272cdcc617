"""Auto-discovery on planted populations: the planted sequence ranks first with the phi a
brute-force count gives; a population with no signal yields nothing highly predictive."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from engine import CompactionConfig, Engine, EngineConfig, discovery
from engine import events as ev
from engine.discovery import Settings
from engine.timeutil import iso, now_us


def _brute_force(
    activation: Sequence[Sequence[str]], retained: Sequence[bool], sequence: Sequence[str]
) -> tuple[int, int]:
    """(users who did `sequence` in order, of whom retained): the plain definition, the oracle
    of these tests."""
    n1 = n11 = 0
    for events, stayed in zip(activation, retained, strict=True):
        i = 0
        for name in events:
            if i < len(sequence) and name == sequence[i]:
                i += 1
        if i == len(sequence):
            n1 += 1
            n11 += bool(stayed)
    return n1, n11


NOW = now_us()
DAY = discovery.DAY_US


def _population(rng: random.Random, planted: bool, users: int = 2000):
    """Events per user (name, offset in days from first seen) and the activation sequences and
    retention flags a brute-force count needs."""
    rows, activation, retained = [], [], []
    for n in range(users):
        start = NOW - rng.uniform(15, 60) * DAY
        early = ["signup"]
        kind = rng.random()
        if kind < 0.5:
            early += ["view_a", "view_b"]  # A then B, the planted behaviour
        elif kind < 0.67:
            early += ["view_b", "view_a"]  # both, wrong order
        elif kind < 0.84:
            early += ["view_a"]
        else:
            early += ["view_c"]
        stays = rng.random() < (0.6 if (planted and kind < 0.5) else 0.2 if planted else 0.35)
        for i, name in enumerate(early):
            rows.append((f"u{n}", name, start + i * 3600_000_000 + rng.randrange(1000)))
        if stays:
            rows.append((f"u{n}", "view_c", start + rng.uniform(7.1, 13.9) * DAY))
        activation.append(early)
        retained.append(stays)
    return rows, activation, retained


def _engine_with(tmp_path, rows) -> tuple[Engine, object]:
    engine = Engine.open(tmp_path, EngineConfig(compaction=CompactionConfig(enabled=False)))
    tenant = engine.authenticate(engine.create_workspace("d").keys.plx_live).tenant
    for i in range(0, len(rows), 500):
        body = {"events": [{"user_id": u, "event": e, "timestamp": iso(int(t))}
                           for u, e, t in rows[i : i + 500]]}  # fmt: skip
        batch = ev.decode_batch(json.dumps(body).encode(), engine.config)
        engine.writer.run(engine._ingest_op(tenant, batch, True, True))
    return engine, tenant


def _analyse(tmp_path, rows) -> discovery.Analysis:
    engine, tenant = _engine_with(tmp_path, rows)
    try:
        with engine.store.read() as txn:
            return discovery.analyse(txn, engine.store, tenant, Settings(), NOW)
    finally:
        engine.close()


def test_planted_sequence_ranks_first_with_the_brute_force_phi(tmp_path):
    rows, activation, retained = _population(random.Random(1), planted=True)
    result = _analyse(tmp_path, rows)
    assert result.usersAnalysed == 2000 and result.retained == sum(retained)
    top = result.sequences[0]
    assert top.sequence == ["view_a", "view_b"] and top.minCount == 1
    n1, n11 = _brute_force(activation, retained, ["view_a", "view_b"])
    phi, _ = discovery.score(n11, n1, sum(retained), len(retained))
    assert (top.users, top.phi) == (n1, round(phi, 4)) and top.pValue < 1e-10
    assert top.retentionWith == pytest.approx(n11 / n1, abs=1e-4)
    assert top.retentionWithout == pytest.approx((sum(retained) - n11) / (2000 - n1), abs=1e-4)
    assert 0.35 < top.phi < 0.45 and top.band in ("highly predictive", "moderately predictive")
    # Every reported figure agrees with the brute-force count of its own sequence.
    for finding in result.sequences:
        if finding.minCount == 1:
            n1, n11 = _brute_force(activation, retained, finding.sequence)
            assert finding.users == n1
            assert finding.phi == round(discovery.score(n11, n1, sum(retained), 2000)[0], 4)


def test_no_signal_reports_nothing_highly_predictive(tmp_path):
    rows, _, _ = _population(random.Random(2), planted=False)
    result = _analyse(tmp_path, rows)
    assert result.usersAnalysed == 2000
    assert all(f.phi < 0.2 for f in result.sequences), result.sequences[:3]
    assert not any(f.band != "not predictive" for f in result.sequences)


def test_users_whose_retention_window_is_open_are_not_analysed(tmp_path):
    rows = [("new", "signup", NOW - 3 * DAY), ("old", "signup", NOW - 20 * DAY)]
    result = _analyse(tmp_path, rows)
    assert result.usersAnalysed == 1 and result.retained == 0


def test_score_and_bands():
    assert discovery.score(50, 100, 50, 200)[0] == pytest.approx(3**-0.5)  # 5000 / sqrt(7.5e7)
    assert discovery.score(0, 0, 10, 100) == (0.0, 1.0)
    assert [discovery.band(x) for x in (0.45, 0.35, 0.25, 0.1)] == [
        "highly predictive", "moderately predictive", "slightly predictive", "not predictive"
    ]  # fmt: skip
