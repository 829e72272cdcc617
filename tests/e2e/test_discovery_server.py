"""Auto-discovery through the real server: trigger a run, poll it, read the ranking."""

from __future__ import annotations

import random
import time

import httpx
from _analytics_support import assert_error

from api.process import ServerProcess, cli
from engine.timeutil import iso, now_us

DAY = 86_400_000_000


def _population(rng: random.Random, users: int = 800) -> list[dict]:
    now, events = now_us(), []
    for n in range(users):
        start = now - int(rng.uniform(15, 40) * DAY)
        planted = rng.random() < 0.5
        other = rng.choice([["view_a"], ["view_c"], ["view_b", "view_a"]])  # B then A: wrong order
        names = ["signup", *(["view_a", "view_b"] if planted else other)]
        for i, name in enumerate(names):
            events.append(
                {"user_id": f"u{n}", "event": name, "timestamp": iso(start + i * 60_000_000)}
            )
        if rng.random() < (0.6 if planted else 0.2):
            events.append(
                {"user_id": f"u{n}", "event": "view_c", "timestamp": iso(start + 9 * DAY)}
            )
    return events


def test_trigger_poll_and_read_the_ranking(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "discovery", "--plan", "enterprise", data=data)
    secret = {"Authorization": f"Bearer {ws['keys']['plx_live']}"}
    server = ServerProcess(data)
    servers.append(server)
    server.start()
    with httpx.Client(base_url=server.url, headers=secret, timeout=30) as client:
        assert_error(client.get("/v1/auto-discovery/results"), 404, "not_found")
        events = _population(random.Random(3))
        for i in range(0, len(events), 500):
            assert (
                client.post("/v1/events/batch", json={"events": events[i : i + 500]}).status_code
                == 200
            )
        r = client.post("/v1/auto-discovery/trigger")
        assert r.status_code == 202 and r.json()["status"] in ("queued", "running")
        run_id = r.json()["runId"]
        assert client.post("/v1/auto-discovery/trigger").json()["runId"] == run_id
        deadline = time.monotonic() + 60
        while True:
            run = client.get(f"/v1/auto-discovery/runs/{run_id}").json()
            if run["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
        assert run["status"] == "completed", run
        results = client.get("/v1/auto-discovery/results", params={"limit": 5}).json()
        assert results["runId"] == run_id and results["usersAnalysed"] == 800
        assert len(results["sequences"]) <= 5
        top = results["sequences"][0]
        assert top["sequence"] == ["view_a", "view_b"] and top["phi"] > 0.3
        assert top["band"] in ("highly predictive", "moderately predictive")
        assert_error(client.get("/v1/auto-discovery/results", params={"limit": 101}), 400,
                     "validation_error", field="limit")  # fmt: skip
