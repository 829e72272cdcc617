"""Monthly usage: stored events per environment; only live events are billable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import EventIn
from engine.errors import InvalidInput
from engine.tenant import Tenant
from engine.timeutil import month_of, now_us, to_us


@pytest.fixture
def tenants(engine):
    ws = engine.create_workspace("usage")
    return ws.id, Tenant(ws.id, "live"), Tenant(ws.id, "test")


def _events(n, **kw):
    return [EventIn(user_id="u", event="e", **kw) for _ in range(n)]


def test_live_and_test_are_counted_apart_and_test_is_never_billable(engine, tenants):
    ws_id, live, test = tenants
    empty = engine.usage(ws_id)
    assert (empty.billable_events, empty.events.live, empty.events.test) == (0, 0, 0)
    engine.track_batch(live, _events(3))
    engine.track(live, EventIn(user_id="u", event="e"))
    engine.track_batch(test, _events(7))
    usage = engine.usage(ws_id)
    assert usage.workspace_id == ws_id
    assert (usage.events.live, usage.events.test) == (4, 7)
    assert usage.billable_events == 4
    engine.track_batch(test, _events(500))
    assert engine.usage(ws_id).billable_events == 4


def test_deduplicated_and_refused_events_are_not_counted(engine, tenants):
    ws_id, live, test = tenants
    engine.track(live, EventIn(user_id="u", event="e", insert_id="a"))
    engine.track(live, EventIn(user_id="u", event="e", insert_id="a"))
    result = engine.track_batch(
        live, [EventIn(user_id="u", event="e", insert_id=i) for i in ("a", "b", "b", "c")]
    )
    assert result.stored == 2
    engine.track(test, EventIn(user_id="u", event="e", insert_id="a"))
    with pytest.raises(InvalidInput):
        engine.track_batch(
            live, [*_events(3), EventIn(user_id="u", event="e", timestamp=datetime(2200, 1, 1))]
        )
    usage = engine.usage(ws_id)
    assert (usage.events.live, usage.events.test, usage.billable_events) == (3, 1, 3)


def test_usage_counts_by_month_of_receipt(engine, tenants):
    ws_id, live, _ = tenants
    # An event dated last year counts in the month it was received.
    engine.track(live, EventIn(user_id="u", event="e", timestamp=datetime(2020, 1, 1, tzinfo=UTC)))
    now = now_us()
    usage = engine.usage(ws_id, at_us=now)
    assert usage.events.live == 1
    assert usage.period == month_of(now)
    start = datetime.fromisoformat(usage.period_start)
    assert (start.day, start.hour, start.minute) == (1, 0, 0)
    assert start.strftime("%Y-%m") == usage.period
    assert to_us(start) <= now
    other = engine.usage(ws_id, at_us=to_us(datetime(2020, 1, 15, tzinfo=UTC)))
    assert other.period == "2020-01" and other.events.live == 0
    assert other.period_start == "2020-01-01T00:00:00Z"


def test_usage_is_per_workspace(engine, tenants):
    ws_id, live, _ = tenants
    other = engine.create_workspace("other")
    engine.track_batch(live, _events(2))
    engine.track_batch(Tenant(other.id, "live"), _events(5))
    assert engine.usage(ws_id).events.live == 2
    assert engine.usage(other.id).events.live == 5
    assert engine.usage("ws_unknown").events.live == 0
