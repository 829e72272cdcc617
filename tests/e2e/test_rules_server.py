"""A rule change governs the very next identification in every worker of a real server."""

from __future__ import annotations

import httpx
from _device_support import CHROME_UA, COMPONENTS

from api.process import ServerProcess, cli


def test_rule_changes_reach_both_workers_at_once(tmp_path):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "rules", "--plan", "enterprise", data=data)
    sk = {"Authorization": f"Bearer {ws['keys']['sk_live']}", "User-Agent": CHROME_UA}
    rule = {
        "name": "Block everything from desktops",
        "status": "live",
        "conditions": {"field": "device.type", "operator": "equals", "value": "desktop"},
        "action": {"verdict": "block"},
    }
    with ServerProcess(data, workers=2) as server, httpx.Client(base_url=server.url) as client:

        def verdicts(n: int) -> set:
            # A new connection each time, which granian hands to either worker.
            out = set()
            for _ in range(n):
                with httpx.Client(base_url=server.url) as fresh:
                    r = fresh.post(
                        "/v1/agent/identify", json={"components": COMPONENTS}, headers=sk
                    )
                    assert r.status_code == 200, r.text
                    out.add(r.json()["verdict"])
            return out

        assert verdicts(6) == {None}
        created = client.post("/v1/rules", json=rule, headers=sk).json()
        assert verdicts(12) == {"block"}
        client.put(f"/v1/rules/{created['id']}", json={"status": "paused"}, headers=sk)
        assert verdicts(12) == {None}
        client.put(
            f"/v1/rules/{created['id']}",
            json={"status": "live", "action": {"verdict": "challenge"}},
            headers=sk,
        )
        assert verdicts(12) == {"challenge"}
        client.delete(f"/v1/rules/{created['id']}", headers=sk)
        assert verdicts(12) == {None}
