"""Funnels through the real server: the document's style of events, counted by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
from _analytics_support import assert_error

from api.process import ServerProcess, cli

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STEPS = ["dashboard_viewed", "filter_applied", "export_created"]


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _population(rng: random.Random) -> tuple[list[dict], list[int]]:
    """Users who stop after a random number of steps, with noise events between steps; the
    expected users per step follow from how far each one went."""
    events: list[dict] = []
    reached = [0, 0, 0]
    for n in range(300):
        user = f"usr_{n:04d}"
        depth = rng.choice([0, 1, 1, 2, 2, 3, 3, 3])
        if depth == 0:
            events.append({"user_id": user, "event": "filter_applied", "timestamp": _at(1)})
            continue
        t = rng.uniform(0, 600)
        for s in range(depth):
            events.append(
                {"user_id": user, "event": STEPS[s], "timestamp": _at(t),
                 "properties": {"format": "csv" if n % 3 else "pdf"}}
            )  # fmt: skip
            events.append({"user_id": user, "event": "settings_opened", "timestamp": _at(t + 1)})
            t += rng.uniform(2, 30)
            reached[s] += 1
    rng.shuffle(events)  # arrival order must not matter
    return events, reached


def test_funnel_over_real_http_matches_the_population(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "funnels", "--plan", "enterprise", data=data)
    secret = {"Authorization": f"Bearer {ws['keys']['plx_live']}"}
    server = ServerProcess(data)
    servers.append(server)
    server.start()
    events, reached = _population(random.Random(4))
    with httpx.Client(base_url=server.url, headers=secret, timeout=30) as client:
        for i in range(0, len(events), 500):
            r = client.post("/v1/events/batch", json={"events": events[i : i + 500]})
            assert r.status_code == 200, r.text
        body = {"steps": STEPS, "from": "2026-03-01", "to": "2026-03-03"}
        r = client.post("/v1/funnels/query", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert [s["users"] for s in answer["steps"]] == reached
        assert answer["overall_conversion"] == round(reached[2] / reached[0], 6)
        assert answer["steps"][1]["conversion_from_previous"] == round(reached[1] / reached[0], 6)
        for step in answer["steps"][1:]:
            assert 120 <= step["median_seconds_to_convert"] <= 1800
            assert step["median_seconds_to_convert"] <= step["p90_seconds_to_convert"] <= 1800

        # A one-minute window: nobody converts (steps are two minutes or more apart).
        tight = client.post(
            "/v1/funnels/query", json={**body, "conversion_window": {"value": 1, "unit": "minute"}}
        ).json()
        assert [s["users"] for s in tight["steps"]] == [reached[0], 0, 0]

        split = client.post(
            "/v1/funnels/query", json={**body, "breakdown": {"property": "format"}}
        ).json()
        by_value = {g["value"]: g["steps"][0]["users"] for g in split["breakdown"]}
        assert set(by_value) == {"csv", "pdf"} and sum(by_value.values()) == reached[0]

        # Errors name the field; a public key is refused; an unknown cohort is a 404.
        r = client.post("/v1/funnels/query", json={**body, "steps": ["dashboard_viewed"]})
        assert_error(r, 400, "validation_error", field="steps")
        r = client.post("/v1/funnels/query", json={**body, "cohort_id": "coh_missing"})
        assert_error(r, 404, "not_found", field="cohort_id")
        public = {"Authorization": f"Bearer {ws['keys']['pk_live']}"}
        r = client.post("/v1/funnels/query", json=body, headers=public)
        assert r.status_code == 403
