"""Device analytics helpers: time buckets and the trend test."""

from __future__ import annotations

import numpy as np

from engine.device_analytics import DAY_US, _period, _trend
from engine.timeutil import parse_instant


def test_weeks_start_on_monday_and_days_are_utc_dates():
    stamps = ["2026-02-01T23:59:59Z", "2026-02-02T00:00:00Z", "2026-02-08T12:00:00Z"]
    ts = np.array([parse_instant(s) for s in stamps], np.int64)
    weeks, labels = _period(ts, "week")
    assert labels == ["2026-01-26", "2026-02-02"]  # Sunday 1 Feb belongs to the week of 26 Jan
    assert weeks[1] == weeks[2] != weeks[0]
    _, days = _period(ts, "day")
    assert days == ["2026-02-01", "2026-02-02", "2026-02-08"]
    _, hours = _period(ts[:1], "hour")
    assert hours == ["2026-02-01T23:00:00Z"]
    assert DAY_US == 86_400_000_000


def test_trend_ignores_noise_and_small_counts():
    assert _trend(3, 100, 1, 100) == "stable"  # 3 % vs 1 %: not significant on 100 events
    assert _trend(300, 10_000, 100, 10_000) == "up"
    assert _trend(100, 10_000, 300, 10_000) == "down"
    assert _trend(5_150, 100_000, 5_000, 100_000) == "stable"  # significant-ish, but only 3 %
    assert _trend(10, 100, 0, 0) == "stable"  # nothing to compare with
