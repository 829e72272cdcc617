"""Funnels against an independent formulation: SQL in DuckDB over the same events, and a
brute-force search over every chain for the times to convert."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import duckdb
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import CompactionConfig, Engine, EngineConfig, funnels
from engine import events as ev
from engine.errors import InvalidInput

BASE = datetime(2026, 1, 5, tzinfo=UTC)
NAMES = ["a", "b", "c", "d"]


def _stamp(minute: int) -> str:
    return (BASE + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def _ingest(engine: Engine, tenant, rows: list[tuple[str, str, int]]) -> None:
    """One batch, so the stored order is the list order (ties in time keep it)."""
    body = {"events": [{"user_id": u, "event": e, "timestamp": _stamp(m)} for u, e, m in rows]}
    batch = ev.decode_batch(json.dumps(body).encode(), engine.config)
    engine.writer.run(engine._ingest_op(tenant, batch, True, True))


def _query(engine: Engine, tenant, **body) -> funnels.FunnelResult:
    body.setdefault("from", "2026-01-05")
    body.setdefault("to", "2026-01-06")
    query = funnels.decode_query(json.dumps(body).encode())
    with engine.store.read() as txn:
        return funnels.run(txn, engine.store, tenant, query)


def _sql_levels(rows, steps: list[str], window_min: int, order: str) -> list[int]:
    """Users reaching each step, by SQL: a chain of distinct events in (time, stored order)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE ev (u VARCHAR, name VARCHAR, ts INTEGER, seq INTEGER)")
    if rows:
        values = [(u, e, m, i) for i, (u, e, m) in enumerate(rows)]
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", values)
    names = ", ".join(f"'{s}'" for s in steps)

    def after(x: str, y: str) -> str:  # x strictly after y in (ts, seq) order
        return f"({x}.ts > {y}.ts OR ({x}.ts = {y}.ts AND {x}.seq > {y}.seq))"

    counts = []
    for m in range(1, len(steps) + 1):
        if order == "any":
            exists = " AND ".join(
                f"EXISTS (SELECT 1 FROM ev r WHERE r.u = a.u AND r.name = '{steps[i]}' "
                f"AND r.ts >= a.ts AND r.ts - a.ts <= {window_min})"
                for i in range(m)
            )
            sql = f"SELECT count(DISTINCT a.u) FROM ev a WHERE a.name IN ({names}) AND {exists}"
        else:
            joins = "".join(
                f" JOIN ev r{i} ON r{i}.u = r0.u AND r{i}.name = '{steps[i]}' "
                f"AND {after(f'r{i}', f'r{i - 1}')}"
                for i in range(1, m)
            )
            where = f"r0.name = '{steps[0]}' AND r{m - 1}.ts - r0.ts <= {window_min}"
            if order == "strict":
                for i in range(m - 1):
                    where += (
                        f" AND NOT EXISTS (SELECT 1 FROM ev x WHERE x.u = r0.u AND x.name IN "
                        f"({names}) AND {after('x', f'r{i}')} AND {after(f'r{i + 1}', 'x')})"
                    )
            sql = f"SELECT count(DISTINCT r0.u) FROM ev r0{joins} WHERE {where}"
        counts.append(con.execute(sql).fetchone()[0])
    return counts


def _brute_times(rows, steps: list[str], window_min: int) -> dict[int, list[float]]:
    """Ordered mode, per step s >= 2: minutes from step s-1 to s on the chain that first reaches
    step s (earliest last event; then the latest start; then the latest step s-1 event)."""
    out: dict[int, list[float]] = {s: [] for s in range(2, len(steps) + 1)}
    for user in sorted({u for u, _, _ in rows}):
        mine = [(m, i, e) for i, (u, e, m) in enumerate(rows) if u == user]
        mine.sort()
        for s in range(2, len(steps) + 1):
            best = None
            for chain in itertools.combinations(mine, s):
                if any(chain[i][2] != steps[i] for i in range(s)):
                    continue
                if chain[-1][0] - chain[0][0] > window_min:
                    continue
                rank = (chain[-1][:2], -chain[0][0], (-chain[-2][0], -chain[-2][1]))
                if best is None or rank < best[0]:
                    best = (rank, chain)
            if best is not None:
                chain = best[1]
                out[s].append(float(chain[-1][0] - chain[-2][0]))
    return out


events_strategy = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.sampled_from(NAMES),
              st.integers(0, 30)),
    max_size=40,
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=events_strategy,
    steps=st.lists(st.sampled_from(NAMES[:3]), min_size=2, max_size=4),
    window=st.integers(0, 20),
    order=st.sampled_from(["ordered", "strict", "any"]),
)
def test_users_per_step_agree_with_sql(tmp_path_factory, rows, steps, window, order):
    engine = Engine.open(
        tmp_path_factory.mktemp("funnel"), EngineConfig(compaction=CompactionConfig(enabled=False))
    )
    try:
        ws = engine.create_workspace("f")
        tenant = engine.authenticate(ws.keys.plx_live).tenant
        if rows:
            _ingest(engine, tenant, rows)
        body = {"steps": steps, "order": order,
                "conversion_window": {"value": window or 1, "unit": "minute"}}  # fmt: skip
        if window == 0:
            body["conversion_window"] = {"value": 1, "unit": "second"}
        result = _query(engine, tenant, **body)
        window_min = window if window else 0
        assert [s.users for s in result.steps] == _sql_levels(rows, steps, window_min, order)
        if order == "ordered":
            expected = _brute_times(rows, steps, window_min)
            for s in range(2, len(steps) + 1):
                got = result.steps[s - 1]
                if not expected[s]:
                    assert got.median_seconds_to_convert is None
                    continue
                seconds = [t * 60 for t in expected[s]]
                assert got.median_seconds_to_convert == pytest.approx(np.median(seconds))
                assert got.p90_seconds_to_convert == pytest.approx(np.quantile(seconds, 0.9))
    finally:
        engine.close()


def test_where_conditions_breakdown_and_conversion(engine, tenant):
    body = {
        "events": [
            {"user_id": "u1", "event": "view", "timestamp": _stamp(0), "properties": {"p": "x"}},
            {"user_id": "u1", "event": "buy", "timestamp": _stamp(5), "properties": {"n": 3}},
            {"user_id": "u2", "event": "view", "timestamp": _stamp(0), "properties": {"p": "y"}},
            {"user_id": "u2", "event": "buy", "timestamp": _stamp(9), "properties": {"n": 1}},
            {"user_id": "u3", "event": "view", "timestamp": _stamp(1), "properties": {"p": "x"}},
        ]
    }
    engine.writer.run(
        engine._ingest_op(
            tenant, ev.decode_batch(json.dumps(body).encode(), engine.config), True, True
        )
    )
    steps = ["view", {"event": "buy", "where": [{"property": "n", "operator": "gte", "value": 2}]}]
    result = _query(engine, tenant, steps=steps, breakdown={"property": "p"})
    assert [s.users for s in result.steps] == [3, 1]
    assert result.overall_conversion == pytest.approx(1 / 3)
    assert result.steps[1].median_seconds_to_convert == 300.0
    groups = {g.value: [s.users for s in g.steps] for g in result.breakdown}
    assert groups == {"x": [2, 1], "y": [1, 0]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": ["a"]}, "steps"),
        ({"steps": ["a", "b"], "from": "yesterday"}, "from"),
        ({"steps": ["a", "b"], "from": "2026-01-06", "to": "2026-01-05"}, "to"),
        ({"steps": ["a", "b"], "order": "sideways"}, "order"),
        ({"steps": ["a", {"event": "b", "where": [{"property": "n", "operator": "in",
                                                    "value": 3}]}]}, "steps[1].where[0].value"),
        ({"steps": ["a", "b"], "conversion_window": {"value": 0}}, "conversion_window.value"),
        ({"steps": ["a", ""]}, "steps[1]"),
    ],
)  # fmt: skip
def test_bad_queries_name_the_field(body, field):
    body.setdefault("from", "2026-01-05")
    body.setdefault("to", "2026-01-06")
    with pytest.raises(InvalidInput) as caught:
        funnels.decode_query(msgspec.json.encode(body))
    assert caught.value.field == field
