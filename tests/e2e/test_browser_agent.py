"""A real browser (Debian's Chromium, headless, driven by Playwright) runs the agent on /demo
against a real `signalpost serve`."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest

from api.process import ServerProcess, cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Debian's chromium (.ci/run), so there a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed: apt-get install chromium",
)
SPOOFED_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("browser") / "data"
    ws = cli("workspace", "create", "--name", "browser", "--plan", "enterprise", data=data)
    with ServerProcess(data) as proc:
        yield proc, ws


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _identify(page, url: str) -> dict:
    page.goto(url)
    page.wait_for_selector("#result[data-state]", timeout=20_000)
    assert page.get_attribute("#result", "data-state") == "done", page.inner_text("#result")
    return json.loads(page.inner_text("#result"))


def _event(server, request_id: str) -> dict:
    proc, ws = server
    r = httpx.get(
        f"{proc.url}/v1/events/{request_id}",
        headers={"Authorization": f"Bearer {ws['keys']['sk_test']}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_same_visitor_after_clearing_storage_and_in_a_fresh_context(server, browser):
    proc, ws = server
    url = f"{proc.url}/demo?key={ws['keys']['pk_test']}&auto=1"
    context = browser.new_context()
    page = context.new_page()
    first = _identify(page, url)
    assert first["visitorId"].startswith("pv_")
    # The agent stored the id in a cookie and localStorage, beside its storage id, and the
    # server set its own HttpOnly cookie with both.
    cookies = {c["name"]: c for c in context.cookies()}
    stored_value = page.evaluate("() => localStorage.getItem('_spvid')")
    visitor, _, storage = stored_value.partition(".")
    assert visitor == first["visitorId"] and len(storage) == 24
    assert cookies["_spid"]["httpOnly"] is True
    assert cookies["_spid"]["value"] == stored_value
    # Script storage gone (Safari's seven-day cap), the server's cookie kept: same visitor.
    page.evaluate("() => { localStorage.clear(); document.cookie = '_spvid=; max-age=0; path=/'; }")
    assert "_spvid" not in {c["name"] for c in context.cookies()}
    kept = _identify(page, url)
    assert kept["visitorId"] == first["visitorId"] and kept["visitorFound"] is True
    # Clear cookies and storage, then identify again.
    context.clear_cookies()
    page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    again = _identify(page, url)
    assert again["visitorId"] == first["visitorId"]
    assert again["visitorFound"] is True
    context.close()
    # A fresh incognito context: no cookie, no storage, same device.
    fresh = browser.new_context()
    third = _identify(fresh.new_page(), url)
    assert third["visitorId"] == first["visitorId"]
    fresh.close()


def test_headless_chromium_is_flagged_as_bot(server, browser):
    proc, ws = server
    context = browser.new_context()
    answer = _identify(context.new_page(), f"{proc.url}/demo?key={ws['keys']['pk_test']}&auto=1")
    context.close()
    event = _event(server, answer["requestId"])
    assert event["signals"]["bot"]["detected"] is True
    assert event["device"]["browser"].startswith(("Chrome", "HeadlessChrome", "Chromium"))


def test_spoofed_user_agent_is_flagged_as_tampered(server, browser):
    proc, ws = server
    context = browser.new_context(user_agent=SPOOFED_UA)
    answer = _identify(context.new_page(), f"{proc.url}/demo?key={ws['keys']['pk_test']}&auto=1")
    context.close()
    event = _event(server, answer["requestId"])
    assert event["signals"]["tampered"] is True
    # The honest browser on the same machine is not tampered.
    honest = browser.new_context()
    answer = _identify(honest.new_page(), f"{proc.url}/demo?key={ws['keys']['pk_test']}&auto=1")
    honest.close()
    assert _event(server, answer["requestId"])["signals"]["tampered"] is False
