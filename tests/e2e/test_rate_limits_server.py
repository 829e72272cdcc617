"""Rate limits through a real two-worker server: cut at the limit across both workers, headers
that count down, Retry-After that a waiting client can trust, nothing stored for a rejected
request, rejections in usage, plan changes applied without a restart."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable

import httpx

from api.process import ServerProcess, cli


def _in_one_window(
    seconds: int, margin: float, send: Callable[[], list[httpx.Response]]
) -> tuple[list[httpx.Response], list[httpx.Response], int]:
    """Runs `send()` until one run begins and ends in the same fixed window of `seconds` (the
    server reads the same clock), each run in a window nothing was counted in yet. A first run
    starts at once if `margin` seconds of the window are left. Returns that run's answers, the
    answers of every run, and the end of that window."""
    every: list[httpx.Response] = []
    counted_until = 0.0  # the end of the last window a run was counted in
    for _ in range(5):
        now = time.time()
        while now < counted_until or seconds - now % seconds < margin:
            time.sleep(seconds - now % seconds + 0.01)
            now = time.time()
        began = time.time()
        answers = send()
        ended = time.time()
        every += answers
        if began // seconds == ended // seconds:
            return answers, every, (int(began // seconds) + 1) * seconds
        counted_until = (ended // seconds + 1) * seconds
    raise AssertionError(f"five runs each crossed a boundary of {seconds} s windows")


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
    # The starter table, with the analytics minute shortened and the ingestion second
    # lengthened to 10 s: the test need not wait for a minute boundary (the default table is
    # checked in tests/unit/engine), and a burst of ingestion fits in one window even on a
    # loaded machine.
    config = tmp_path / "signalpost.toml"
    config.write_text(
        "[engine.rate_limits.plans.starter]\n"
        "ingest = {requests = 100, per_seconds = 10}\n"
        "analytics = {requests = 60, per_seconds = 10}\n"
        "device_read = {requests = 100, per_seconds = 60, burst = 10}\n"
        "device_manage = {requests = 30, per_seconds = 60, burst = 10}\n"
    )
    server = ServerProcess(data, workers=2, env={"SIGNALPOST_CONFIG": str(config)})
    servers.append(server)
    server.start()

    # Other analytics endpoints: 60 per window, counted across both workers.
    answers, analytics, reset = _in_one_window(
        10, 6, lambda: _burst(server.url, secret, "GET", "/v1/usage", 90)
    )
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert (len(ok), len(refused)) == (60, 30)
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok) == list(range(60))
    assert {r.headers["x-ratelimit-limit"] for r in answers} == {"60"}
    assert {int(r.headers["x-ratelimit-reset"]) for r in answers} == {reset}
    body = refused[0].json()
    assert body["error"]["code"] == "rate_limited"
    retry = int(refused[0].headers["retry-after"])
    assert body["error"]["retryAfter"] == retry and 1 <= retry <= 10
    assert body["error"]["message"] == f"Rate limit exceeded. Retry in {retry}s."

    with httpx.Client(base_url=server.url, headers=secret, timeout=30) as client:
        with cf.ThreadPoolExecutor(16) as pool:

            def concurrently(method: str, path: str, n: int, **kw) -> list[httpx.Response]:
                return list(pool.map(lambda _: client.request(method, path, **kw), range(n)))

            # Connections opened now, so that a burst below spends its second on requests.
            assert {r.status_code for r in concurrently("GET", "/healthz", 16)} == {200}

            # Device reads: 100 per minute with a burst of 10 per second. A client that waits
            # the Retry-After it was given gets through.
            reads, device, _ = _in_one_window(1, 0.7, lambda: concurrently("GET", "/v1/events", 15))
            assert sum(r.status_code == 200 for r in reads) == 10
            refused = next(r for r in reads if r.status_code == 429)
            time.sleep(int(refused.headers["retry-after"]))
            assert client.get("/v1/events").status_code == 200

            # Health is never limited.
            assert all(client.get("/healthz").status_code == 200 for _ in range(150))

            # A rejected ingestion request stores nothing: stored events equal accepted answers.
            batch = {"events": [{"user_id": "u", "event": "e"}]}
            sent, ingest, _ = _in_one_window(
                10, 6, lambda: concurrently("POST", "/v1/events/batch", 160, json=batch)
            )
            assert sum(r.status_code == 200 for r in sent) == 100
            assert all(r.status_code in (200, 429) for r in ingest)
            accepted = sum(r.status_code == 200 for r in ingest)

        # Each process adds its rejections to usage about every second.
        rejected = sum(r.status_code == 429 for r in [*analytics, *device, *ingest])
        deadline = time.monotonic() + 30
        while True:
            usage = client.get("/v1/usage")
            if usage.status_code == 429:  # the analytics window may be spent
                time.sleep(int(usage.headers["retry-after"]))
                continue
            counted = usage.json()
            if counted["rate_limited_requests"] >= rejected:
                break
            assert time.monotonic() < deadline, (counted, rejected)
            time.sleep(0.2)
        assert counted["events"]["live"] == accepted

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
