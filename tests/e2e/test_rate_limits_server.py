"""Rate limits through a real two-worker server: cut at the limit across both workers, headers
that count down, Retry-After that a waiting client can trust, nothing stored for a rejected
request, rejections in usage, plan changes applied without a restart."""

from __future__ import annotations

import concurrent.futures as cf
import time

import httpx

from api.process import ServerProcess, cli


def _at_window_start(seconds: int, margin: float) -> None:
    """Wait until at least `margin` seconds of the current fixed window remain."""
    left = seconds - (time.time() % seconds)
    if left < margin:
        time.sleep(left + 0.05)


def _burst(url: str, headers: dict, method: str, path: str, n: int, **kw) -> list[httpx.Response]:
    # Fresh connections from many threads: the two granian workers both take requests.
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            return c.request(method, path, **kw)

    with cf.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def test_limits_hold_across_two_workers(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "limits", "--plan", "starter", data=data)
    secret = {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
    # The starter table, with the analytics minute shortened to 10 s so the test need not wait
    # for a minute boundary (the default table is checked in tests/unit/engine).
    config = tmp_path / "signalpost.toml"
    config.write_text(
        "[engine.rate_limits.plans.starter]\n"
        "ingest = {requests = 100, per_seconds = 1}\n"
        "analytics = {requests = 60, per_seconds = 10}\n"
        "device_read = {requests = 100, per_seconds = 60, burst = 10}\n"
        "device_manage = {requests = 30, per_seconds = 60, burst = 10}\n"
    )
    server = ServerProcess(data, workers=2, env={"SIGNALPOST_CONFIG": str(config)})
    servers.append(server)
    server.start()

    # Other analytics endpoints: 60 per window, counted across both workers.
    _at_window_start(10, 6)
    answers = _burst(server.url, secret, "GET", "/v1/usage", 90)
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert (len(ok), len(refused)) == (60, 30)
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok) == list(range(60))
    assert {r.headers["x-ratelimit-limit"] for r in answers} == {"60"}
    reset = int(ok[0].headers["x-ratelimit-reset"])
    assert reset % 10 == 0 and 0 < reset - time.time() <= 10
    body = refused[0].json()
    assert body["error"]["code"] == "rate_limited"
    retry = int(refused[0].headers["retry-after"])
    assert body["error"]["retryAfter"] == retry and 1 <= retry <= 10
    assert body["error"]["message"] == f"Rate limit exceeded. Retry in {retry}s."

    # Device reads: 100 per minute with a burst of 10 per second. A client that waits the
    # Retry-After it was given gets through.
    _at_window_start(1, 0.7)
    reads = _burst(server.url, secret, "GET", "/v1/events", 15)
    assert sum(r.status_code == 200 for r in reads) == 10
    refused = next(r for r in reads if r.status_code == 429)
    time.sleep(int(refused.headers["retry-after"]))
    with httpx.Client(base_url=server.url, headers=secret, timeout=30) as client:
        assert client.get("/v1/events").status_code == 200

        # Health is never limited.
        assert all(client.get("/healthz").status_code == 200 for _ in range(150))

        # A rejected ingestion request stores nothing: stored events equal accepted answers.
        # (One pooled client: 160 requests must fit in about a second.)
        _at_window_start(1, 0.9)
        batch = {"events": [{"user_id": "u", "event": "e"}]}
        with cf.ThreadPoolExecutor(16) as pool:
            sent = list(pool.map(lambda _: client.post("/v1/events/batch", json=batch), range(160)))
        accepted = sum(r.status_code == 200 for r in sent)
        assert 100 <= accepted < 160 and accepted + sum(r.status_code == 429 for r in sent) == 160
        time.sleep(1.5)  # rejections reach usage within about a second
        usage = client.get("/v1/usage")
        if usage.status_code == 429:  # the analytics minute may still be spent
            time.sleep(int(usage.headers["retry-after"]))
            usage = client.get("/v1/usage")
        counted = usage.json()
        assert counted["events"]["live"] == accepted
        rejected = 30 + sum(r.status_code == 429 for r in reads) + (160 - accepted)
        assert counted["rate_limited_requests"] >= rejected

        # A plan change applies to the running server: enterprise is unlimited.
        cli("workspace", "set-plan", "--workspace", ws["id"], "--plan", "enterprise", data=data)
        after = _burst(server.url, secret, "GET", "/v1/usage", 80)
        assert all(r.status_code == 200 for r in after)
        assert "x-ratelimit-limit" not in after[0].headers


def test_the_benchmark_build_totals_the_limiters_time_per_worker(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "timed", "--plan", "scale", data=data)
    env = {"SIGNALPOST_BENCHMARK_ENDPOINTS": "1"}
    server = ServerProcess(data, workers=2, env=env)
    servers.append(server)
    server.start()
    secret = {"Authorization": f"Bearer {ws['keys']['plx_live']}"}
    sent = _burst(server.url, secret, "POST", "/v1/events", 40, json={"user_id": "u", "event": "e"})
    assert all(r.status_code == 200 for r in sent)
    totals: dict[int, dict] = {}
    for _ in range(200):  # fresh connections until both workers have answered for themselves
        with httpx.Client(base_url=server.url, timeout=30) as c:
            body = c.get("/v1/_baseline/limiter").json()
        totals[body["pid"]] = body
        if len(totals) == 2:
            break
    assert len(totals) == 2
    assert sum(t["calls"] for t in totals.values()) == 40  # every ingestion checked, once
    assert all(t["ns"] > 0 for t in totals.values() if t["calls"])
