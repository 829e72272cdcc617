"""Smart Signals as functions of components, request facts and IP intelligence."""

from __future__ import annotations

import msgspec

from engine.device import Components, Mobile
from engine.ipintel import IpInfo
from engine.signals import evaluate

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36"
)
CLEAN = {
    "userAgent": CHROME_LINUX,
    "clientHints": {"brands": [{"brand": "Chromium", "version": "121"}], "platform": "Linux"},
    "platform": "Linux x86_64",
    "timezone": "Europe/Berlin",
    "maxTouchPoints": 0,
    "storage": {"quota": 50_000_000_000},
    "automation": {"webdriver": False},
}
GERMAN_IP = IpInfo(address="5.1.2.3", country="DE")


def run(components=None, mobile=None, ip=GERMAN_IP, header_ua=CHROME_LINUX, forwarded=False,
        provider=None):  # fmt: skip
    c = msgspec.convert(components or CLEAN, Components)
    signals, _ = evaluate(
        c, mobile, ip, header_ua=header_ua, forwarded=forwarded, vpn_provider=provider
    )
    return signals


def test_a_clean_browser_raises_nothing():
    s = run()
    assert not s.bot.detected and not s.vpn.detected and not s.tampered
    assert not (s.incognito or s.proxy or s.tor or s.emulator or s.rootedDevice or s.clonedApp)


def test_bot_markers():
    assert run({**CLEAN, "userAgent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
               header_ua=None).bot.kind == "crawler"  # fmt: skip
    assert run({**CLEAN, "automation": {"webdriver": True}}).bot.detected
    headless = CHROME_LINUX.replace("Chrome/", "HeadlessChrome/")
    assert run({**CLEAN, "userAgent": headless}, header_ua=headless).bot.detected
    one_weak = {**CLEAN, "automation": {"noPlugins": True}}
    assert not run(one_weak).bot.detected
    two_weak = {**CLEAN, "automation": {"noPlugins": True, "zeroOuterSize": True}}
    assert run(two_weak).bot.detected


def test_tampering_contradictions():
    firefox_windows = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
    )
    spoofed = {**CLEAN, "userAgent": firefox_windows}
    assert run(spoofed, header_ua=firefox_windows).tampered  # hints on Firefox, Linux platform
    assert run(header_ua="curl/8.0").tampered  # agent UA differs from the request's
    mismatch = {**CLEAN, "clientHints": {"brands": [{"brand": "Chromium", "version": "99"}]}}
    assert run(mismatch).tampered
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    assert run({**CLEAN, "userAgent": iphone, "clientHints": None, "platform": "iPhone"},
               header_ua=iphone).tampered  # no touch points  # fmt: skip


def test_vpn_from_timezone_or_provider():
    assert run(ip=IpInfo(address="8.8.8.8", country="US")).vpn.detected
    assert not run(ip=IpInfo(address="5.1.2.3", country="DE")).vpn.detected
    assert run(provider="M247").vpn.provider == "M247"
    assert not run(
        {**CLEAN, "timezone": "UTC"}, ip=IpInfo(address="8.8.8.8", country="US")
    ).vpn.detected


def test_proxy_tor_incognito_and_mobile():
    assert run(forwarded=True).proxy
    assert run(ip=IpInfo(address="5.1.2.3", country="DE", datacenter=True)).proxy
    assert run(ip=IpInfo(address="5.1.2.3", country="DE", tor=True)).tor
    assert run({**CLEAN, "storage": {"quota": 300_000_000}}).incognito
    s = run(mobile=Mobile(emulator=True, rooted=True, clonedApp=True))
    assert s.emulator and s.rootedDevice and s.clonedApp
