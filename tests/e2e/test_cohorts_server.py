"""Cohorts through the real server: growth-plan users who exported at least 3 times in 30 days,
paged 500 at a time, used as a funnel filter, and kept current as events arrive."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from _analytics_support import assert_error

from api.process import ServerProcess, cli

NOW = datetime.now(UTC)


def _ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def _post_all(client: httpx.Client, events: list[dict]) -> None:
    for i in range(0, len(events), 500):
        r = client.post("/v1/events/batch", json={"events": events[i : i + 500]})
        assert r.status_code == 200, r.text


def _population() -> tuple[list[dict], list[tuple[str, str]], set[str]]:
    """1,300 users: plan by index, exports by index; the expected members follow."""
    events, traits, expected = [], [], set()
    for n in range(1300):
        user = f"usr_{n:05d}"
        plan = "growth" if n % 4 else "scale"
        exports = n % 5  # 0..4 exports in the last days
        traits.append((user, plan))
        events.append({"user_id": user, "event": "dashboard_viewed", "timestamp": _ago(50)})
        for k in range(exports):
            events.append({"user_id": user, "event": "export_created", "timestamp": _ago(10 + k)})
        if n % 7 == 0:  # an old export outside the 30 days
            events.append({"user_id": user, "event": "export_created", "timestamp": _ago(24 * 40)})
        if plan == "growth" and exports >= 3:
            expected.add(user)
    return events, traits, expected


def _members(client: httpx.Client, cohort_id: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = client.get(f"/v1/cohorts/{cohort_id}/members", params=params).json()
        assert len(page["userIds"]) <= 500
        seen += page["userIds"]
        pages += 1
        if not page["hasMore"]:
            return seen, pages
        cursor = page["nextCursor"]


def test_cohort_over_real_http(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "cohorts", "--plan", "enterprise", data=data)
    secret = {"Authorization": f"Bearer {ws['keys']['plx_live']}"}
    server = ServerProcess(data)
    servers.append(server)
    server.start()
    events, traits, expected = _population()
    with httpx.Client(base_url=server.url, headers=secret, timeout=60) as client:
        _post_all(client, events)
        for user, plan in traits:
            assert (
                client.post(
                    "/v1/identify", json={"user_id": user, "traits": {"plan": plan}}
                ).status_code
                == 200
            )
        definition = {"type": "group", "operator": "AND", "conditions": [
            {"type": "property", "property": "plan", "operator": "equals", "value": "growth"},
            {"type": "event", "event": "export_created", "count": {"operator": "gte", "value": 3},
             "window": {"last_days": 30}},
        ]}  # fmt: skip
        r = client.post(
            "/v1/cohorts", json={"name": "Growth power exporters", "definition": definition}
        )
        assert r.status_code == 201, r.text
        cohort = r.json()
        assert cohort["id"].startswith("coh_") and cohort["size"] == len(expected)
        # The definition comes back in full form: given fields as sent, defaults filled in.
        stored = cohort["definition"]["conditions"]
        assert stored[0] == definition["conditions"][0] and stored[1]["where"] == []
        assert {k: stored[1][k] for k in definition["conditions"][1]} == definition["conditions"][1]
        assert cohort["computedAt"]

        members, pages = _members(client, cohort["id"])
        assert sorted(members) == sorted(expected) and pages == -(-len(expected) // 500)

        listed = client.get("/v1/cohorts").json()
        assert [(c["id"], c["size"]) for c in listed["data"]] == [(cohort["id"], len(expected))]

        # A funnel restricted to the cohort counts only its members.
        funnel = {"steps": ["dashboard_viewed", "export_created"], "from": _ago(24 * 31),
                  "to": _ago(-1), "cohort_id": cohort["id"]}  # fmt: skip
        answer = client.post("/v1/funnels/query", json=funnel).json()
        assert [s["users"] for s in answer["steps"]] == [len(expected), len(expected)]

        # New events: a growth user with two exports does a third; the server's background
        # refresh (about every second) brings the user in without a full re-evaluation.
        newcomer = next(u for n, (u, p) in enumerate(traits) if p == "growth" and n % 5 == 2)
        _post_all(client, [{"user_id": newcomer, "event": "export_created", "timestamp": _ago(1)}])
        deadline = time.monotonic() + 30
        while True:
            now = client.get(f"/v1/cohorts/{cohort['id']}").json()
            if now["size"] == len(expected) + 1:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.2)
        assert newcomer in _members(client, cohort["id"])[0]

        r = client.get(f"/v1/cohorts/{cohort['id']}/members", params={"cursor": "x"})
        assert_error(r, 400, "validation_error", field="cursor")
        assert_error(client.get("/v1/cohorts/coh_nothere"), 404, "not_found", field="cohort_id")
        bad = {"name": "bad", "definition": {"type": "group", "operator": "NOT", "conditions": []}}
        assert_error(client.post("/v1/cohorts", json=bad), 400, "validation_error",
                     field="definition.conditions")  # fmt: skip
