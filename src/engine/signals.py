"""Smart Signals: bot, vpn, proxy, tor, incognito, tampered, emulator, rootedDevice, clonedApp.

Each signal is a plain function of the agent's components, the request and IP intelligence, so
that it can be explained and tested. docs/signals.md says what each one catches and misses.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec
from crawlerdetect import CrawlerDetect
from ua_parser import parse

from .device import Components, Mobile
from .ipintel import IpInfo
from .tzcountry import countries

# Chromium incognito windows get a storage quota bounded by a small share of memory; a normal
# profile gets a share of the disk, which is gigabytes on any real machine.
INCOGNITO_QUOTA_BYTES = 1_200_000_000

_crawlers = CrawlerDetect()


class BotSignal(msgspec.Struct):
    detected: bool
    kind: str | None = None


class VpnSignal(msgspec.Struct):
    detected: bool
    provider: str | None = None


class Signals(msgspec.Struct):
    bot: BotSignal
    vpn: VpnSignal
    incognito: bool
    tampered: bool
    emulator: bool
    proxy: bool
    tor: bool
    rootedDevice: bool
    clonedApp: bool


class UserAgentInfo(msgspec.Struct, frozen=True):
    browser: str
    major: str
    os: str
    device: str
    crawler: bool


@lru_cache(maxsize=8192)
def user_agent(ua: str) -> UserAgentInfo:
    """Parsed user agent; cached because parsing and crawler patterns cost 10–300 µs."""
    parsed = parse(ua)
    agent, os, dev = parsed.user_agent, parsed.os, parsed.device
    return UserAgentInfo(
        browser=agent.family if agent else "Other",
        major=(agent.major or "") if agent else "",
        os=os.family if os else "Other",
        device=dev.family if dev else "Other",
        crawler=bool(ua) and _crawlers.isCrawler(ua),
    )


def _os_family(name: str) -> str:
    n = name.lower()
    for needle, family in (
        ("windows", "windows"),
        ("win", "windows"),
        ("mac", "mac"),
        ("ios", "ios"),
        ("iphone", "ios"),
        ("ipad", "ios"),
        ("android", "android"),
        ("cros", "chromeos"),
        ("chrome os", "chromeos"),
        ("linux", "linux"),
        ("x11", "linux"),
    ):
        if needle in n:
            return family
    return ""


def bot(components: Components, ua: UserAgentInfo) -> BotSignal:
    auto = components.automation
    if ua.crawler or "headless" in components.userAgent.lower():
        return BotSignal(True, "crawler" if ua.crawler else "headless")
    if auto is not None and (auto.webdriver or auto.headlessUA):
        return BotSignal(True, "automation")
    if not components.userAgent:
        return BotSignal(True, "no_user_agent")
    # Weaker markers count only together: one alone happens in real browsers.
    weak = 0
    if auto is not None:
        weak += sum(
            bool(x)
            for x in (auto.noChromeObject, auto.noPlugins, auto.noLanguages, auto.zeroOuterSize)
        )
        weak += bool(auto.permissionsMismatch)
    if weak >= 2:
        return BotSignal(True, "headless")
    return BotSignal(False)


def tampered(components: Components, ua: UserAgentInfo, header_ua: str | None) -> bool:
    """True when the reported browser contradicts itself."""
    text = components.userAgent
    if header_ua is not None and text and header_ua != text:
        return True
    ua_os = _os_family(ua.os) or _os_family(text)
    hints = components.clientHints
    chromium = ua.browser in {
        "Chrome",
        "Chromium",
        "Edge",
        "Opera",
        "Chrome Mobile",
        "Samsung Internet",
    }
    if hints is not None and hints.brands:
        if ua.browser in {"Firefox", "Safari", "Mobile Safari", "Firefox Mobile"}:
            return True  # those browsers do not implement client hints
        versions = {b.version.split(".")[0] for b in hints.brands if "Chromium" in b.brand}
        if chromium and ua.major and versions and ua.major not in versions:
            return True
        hint_os = _os_family(hints.platform)
        if ua_os and hint_os and hint_os != ua_os and {ua_os, hint_os} != {"linux", "android"}:
            return True
    platform_os = _os_family(components.platform)
    compatible = ({"linux", "android"}, {"mac", "ios"}, {"linux", "chromeos"})
    if ua_os and platform_os and platform_os != ua_os and {ua_os, platform_os} not in compatible:
        return True
    if ua_os in {"ios", "android"} and components.maxTouchPoints == 0:
        return True
    renderer = (components.webgl.renderer if components.webgl else "").lower()
    return ua_os == "windows" and "apple" in renderer


def incognito(components: Components) -> bool:
    storage = components.storage
    if storage is None:
        return False
    if storage.quota is not None and 0 < storage.quota < INCOGNITO_QUOTA_BYTES:
        return True
    return storage.indexedDB is False and storage.localStorage is not False


def vpn(components: Components, ip: IpInfo, provider: str | None) -> VpnSignal:
    if provider is not None:
        return VpnSignal(True, provider)
    zone_countries = countries(components.timezone) if components.timezone else frozenset()
    if ip.country and zone_countries and ip.country not in zone_countries:
        return VpnSignal(True, None)
    return VpnSignal(False)


def evaluate(
    components: Components,
    mobile: Mobile | None,
    ip: IpInfo,
    *,
    header_ua: str | None,
    forwarded: bool,
    vpn_provider: str | None,
) -> tuple[Signals, UserAgentInfo]:
    ua = user_agent(components.userAgent)
    signals = Signals(
        bot=bot(components, ua),
        vpn=vpn(components, ip, vpn_provider),
        incognito=incognito(components),
        tampered=tampered(components, ua, header_ua),
        emulator=bool(mobile and mobile.emulator),
        proxy=forwarded or ip.datacenter,
        tor=ip.tor,
        rootedDevice=bool(mobile and mobile.rooted),
        clonedApp=bool(mobile and mobile.clonedApp),
    )
    return signals, ua
