"""Isolation: two workspaces, and the live and test environments of one, never meet."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import msgspec
import polars as pl

from engine import EventIn, IdentifyIn
from engine.tenant import Tenant

START = datetime(2026, 6, 1, tzinfo=UTC)


def test_tenants_never_see_each_others_events(engine, exported):
    a = engine.create_workspace("a")
    b = engine.create_workspace("b")
    tenants = {
        "a-live": engine.authenticate(a.keys.plx_live).tenant,
        "a-test": engine.authenticate(a.keys.pk_test).tenant,
        "b-live": engine.authenticate(b.keys.sk_live).tenant,
        "b-test": engine.authenticate(b.keys.plx_test).tenant,
    }
    assert len(set(tenants.values())) == 4
    counts = {"a-live": 3, "a-test": 5, "b-live": 2, "b-test": 4}
    for name, tenant in tenants.items():
        # The same user ids, event names, insert_ids and timestamps everywhere.
        engine.track_batch(
            tenant,
            [
                EventIn(
                    user_id="shared-user",
                    event="shared-event" if i else name,
                    timestamp=START + timedelta(seconds=i),
                    insert_id=f"id-{i}",
                    properties=msgspec.Raw(msgspec.json.encode({"tenant": name, "i": i})),
                )
                for i in range(counts[name])
            ],
        )
        engine.identify(tenant, IdentifyIn(user_id="shared-user", traits={"tenant": name}))
    engine.compact(tenants["a-live"])
    for name, tenant in tenants.items():
        rows = exported(engine, tenant)
        assert [r["properties"] for r in rows] == [
            {"tenant": name, "i": i} for i in range(counts[name])
        ]
        assert rows[0]["event"] == name
        frame = pl.read_parquet(io.BytesIO(engine.export_parquet(tenant, 0, 2**62)))
        assert frame.height == counts[name]
        assert engine.profile(tenant, "shared-user").traits == {"tenant": name}
    usage_a, usage_b = engine.usage(a.id), engine.usage(b.id)
    assert (usage_a.events.live, usage_a.events.test) == (3, 5)
    assert (usage_b.events.live, usage_b.events.test) == (2, 4)
    assert (usage_a.billable_events, usage_b.billable_events) == (3, 2)


def test_workspace_ids_that_share_a_leading_substring_stay_apart(engine, exported):
    # Real ids are random hex; the key layout must not depend on that.
    short, long = Tenant("ws_ab", "live"), Tenant("ws_abc", "live")
    engine.track(short, EventIn(user_id="u", event="short", insert_id="x"))
    assert engine.track(long, EventIn(user_id="u", event="long", insert_id="x")).stored == 1
    assert [r["event"] for r in exported(engine, short)] == ["short"]
    assert [r["event"] for r in exported(engine, long)] == ["long"]
    assert engine.usage("ws_ab").events.live == 1
    assert engine.usage("ws_abc").events.live == 1
