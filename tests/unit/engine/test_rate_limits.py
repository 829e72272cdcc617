"""The limiter: the documents' table, fixed windows shared by every process, bursts."""

from __future__ import annotations

from engine.rate_limits import DEFAULT_PLANS, Limit, Limiter, RateLimitConfig


def test_default_table_has_the_documents_numbers():
    assert DEFAULT_PLANS["scale"]["ingest"] == Limit(1000, 1)
    assert DEFAULT_PLANS["growth"]["ingest"] == DEFAULT_PLANS["starter"]["ingest"] == Limit(100, 1)
    assert all(
        DEFAULT_PLANS[p]["analytics"] == Limit(60, 60)
        for p in ("starter", "growth", "pro", "scale")
    )
    assert DEFAULT_PLANS["starter"]["device_read"] == Limit(100, 60, 10)
    assert DEFAULT_PLANS["pro"]["device_read"] == Limit(1000, 60, 50)
    assert DEFAULT_PLANS["starter"]["device_manage"] == Limit(30, 60, 10)
    assert DEFAULT_PLANS["pro"]["device_manage"] == Limit(100, 60, 50)
    assert DEFAULT_PLANS["enterprise"] == {}


def test_two_limiters_on_one_directory_count_together(tmp_path):
    a, b = Limiter(tmp_path, RateLimitConfig()), Limiter(tmp_path, RateLimitConfig())
    try:
        now = 1_800_000_000.25
        results = [
            (a if i % 2 else b).check("ws_1", "starter", "analytics", now) for i in range(70)
        ]
        assert sum(r.allowed for r in results) == 60
        assert [r.remaining for r in results[:3]] == [59, 58, 57]
        refused = results[-1]
        assert not refused.allowed and refused.reset == 1_800_000_060  # next minute boundary
        assert refused.retry_after == 60  # 59.75 s, rounded up
        # Another workspace, and the next window, start from zero.
        assert a.check("ws_2", "starter", "analytics", now).allowed
        assert b.check("ws_1", "starter", "analytics", now + 60).remaining == 59
    finally:
        a.close()
        b.close()


def test_burst_is_per_second_and_retry_after_is_the_next_second(tmp_path):
    limiter = Limiter(tmp_path, RateLimitConfig())
    try:
        now = 1_800_000_000.6
        results = [limiter.check("ws", "starter", "device_read", now) for _ in range(12)]
        assert [r.allowed for r in results] == [True] * 10 + [False] * 2
        assert results[-1].retry_after == 1 and results[-1].remaining == 90
        assert limiter.check("ws", "starter", "device_read", now + 0.5).allowed
    finally:
        limiter.close()


def test_enterprise_and_disabled_are_unlimited(tmp_path):
    limiter = Limiter(tmp_path, RateLimitConfig())
    (tmp_path / "off").mkdir()
    off = Limiter(tmp_path / "off", RateLimitConfig(enabled=False))
    try:
        assert limiter.check("ws", "enterprise", "ingest") is None
        assert off.check("ws", "starter", "ingest") is None
    finally:
        limiter.close()
        off.close()


def test_high_limits_lease_from_the_shared_counter_within_one_lease_per_process(tmp_path):
    a, b = Limiter(tmp_path, RateLimitConfig()), Limiter(tmp_path, RateLimitConfig())
    try:
        now = 1_800_000_000.1
        results = [(a if i % 3 else b).check("ws", "scale", "ingest", now) for i in range(1500)]
        allowed = sum(r.allowed for r in results)
        assert 1000 - 2 * 9 <= allowed <= 1000  # leases of 10: at most 9 unused per process
        assert all(0 <= r.remaining <= 1000 for r in results)
        assert a.check("ws", "scale", "ingest", now + 1).allowed  # the next second starts anew
    finally:
        a.close()
        b.close()


def test_refusals_hold_until_the_window_ends_and_follow_a_plan_change(tmp_path):
    a, b = Limiter(tmp_path, RateLimitConfig()), Limiter(tmp_path, RateLimitConfig())
    try:
        now = 1_800_000_000.4
        results = [(a if i % 2 else b).check("ws", "starter", "ingest", now) for i in range(300)]
        assert sum(r.allowed for r in results) == 100  # exact across both processes
        refused = [r for r in results if not r.allowed]
        assert {(r.remaining, r.retry_after, r.reset) for r in refused} == {(0, 1, 1_800_000_001)}
        # A later refusal in the same window still says when to come back.
        assert a.check("ws", "starter", "ingest", now + 0.55).retry_after == 1
        # A higher plan's limit is checked afresh, not refused from the old plan's answer.
        assert a.check("ws", "scale", "ingest", now + 0.5).allowed
        assert a.check("ws", "starter", "ingest", now + 1).allowed  # the next window
    finally:
        a.close()
        b.close()


def test_high_bursts_lease_too_and_hold_to_one_lease_per_process(tmp_path):
    config = RateLimitConfig(plans={"pro": {"device_read": Limit(100_000, 60, 1000)}})
    a, b = Limiter(tmp_path, config), Limiter(tmp_path, config)
    try:
        now = 1_800_000_000.1
        results = [(a if i % 3 else b).check("ws", "pro", "device_read", now) for i in range(1500)]
        assert 1000 - 2 * 9 <= sum(r.allowed for r in results) <= 1000  # leases of 10
        # A lease never outlives its second: the next second's burst starts anew.
        assert sum(a.check("ws", "pro", "device_read", now + 1).allowed for _ in range(50)) == 50
        assert max(r.retry_after for r in results) == 1
    finally:
        a.close()
        b.close()
