"""`kill -9` of a real two-worker server at seeded moments while every kind of write runs
(tests/e2e/_crash/): after each restart nothing acknowledged is lost or duplicated,
nothing deleted comes back, no batch is half there, and every acknowledged identification and
list change reaches the webhook receiver at least once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _crash import CrashConfig, iter_defects, run_crash

# Every kind of write the harness drives; the long run must have had each acknowledged.
KINDS = (
    "event", "batch", "trait", "identification", "visitor.delete",
    "rule.create", "rule.update", "rule.delete", "list.create", "list.update", "list.delete",
    "webhook.create", "webhook.update", "webhook.delete", "cohort.create", "cohort.delete",
    "discovery.trigger",
)  # fmt: skip


def _assert_clean(summary: dict[str, Any], kills: int) -> None:
    assert summary["kills"] == kills
    assert summary["verification_passes"] == kills + 1
    defects = "\n".join(iter_defects(summary))
    assert not summary["defects"], f"{len(summary['defects'])} defects:\n{defects}"


def test_three_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    config = CrashConfig(kills=3, seed=3, min_acks=30, max_acks=90, early_share=0.0)
    summary = run_crash(config, tmp_path)
    _assert_clean(summary, 3)
    assert summary["acknowledged"]["identification"] > 0
    assert summary["acknowledged"]["batch"] > 0


@pytest.mark.slow
def test_twenty_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    summary = run_crash(CrashConfig(kills=20, seed=7), tmp_path)
    _assert_clean(summary, 20)
    assert not [k for k in KINDS if not summary["acknowledged"].get(k)]
    assert summary["unknown_total"] > 0  # kills did land on requests in flight
