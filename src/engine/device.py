"""What the browser agent (or a mobile SDK relayed by a server) sends, and how it is normalised.

Every field is optional: a garbage or partial payload still identifies, with lower confidence.
Sizes are bounded so that one request cannot store megabytes.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec

Short = Annotated[str, msgspec.Meta(max_length=512)]
Tiny = Annotated[str, msgspec.Meta(max_length=128)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class Brand(msgspec.Struct, forbid_unknown_fields=False):
    brand: Tiny = ""
    version: Tiny = ""


class ClientHints(msgspec.Struct, forbid_unknown_fields=False):
    brands: Annotated[list[Brand], msgspec.Meta(max_length=16)] = []
    mobile: bool | None = None
    platform: Tiny = ""
    platformVersion: Tiny = ""
    architecture: Tiny = ""
    model: Tiny = ""


class Screen(msgspec.Struct, forbid_unknown_fields=False):
    w: Count = 0
    h: Count = 0
    availW: Count = 0
    availH: Count = 0
    colorDepth: Count = 0
    pixelRatio: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0


class WebGL(msgspec.Struct, forbid_unknown_fields=False):
    vendor: Short = ""
    renderer: Short = ""
    extensions: Annotated[list[Tiny], msgspec.Meta(max_length=256)] = []


class Storage(msgspec.Struct, forbid_unknown_fields=False):
    localStorage: bool | None = None
    sessionStorage: bool | None = None
    indexedDB: bool | None = None
    cookies: bool | None = None
    # navigator.storage.estimate().quota in bytes: small quotas betray incognito windows.
    quota: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Automation(msgspec.Struct, forbid_unknown_fields=False):
    webdriver: bool | None = None
    headlessUA: bool | None = None
    noChromeObject: bool | None = None
    noPlugins: bool | None = None
    noLanguages: bool | None = None
    permissionsMismatch: bool | None = None
    zeroOuterSize: bool | None = None


class Components(msgspec.Struct, forbid_unknown_fields=False):
    userAgent: Short = ""
    clientHints: ClientHints | None = None
    platform: Tiny = ""
    vendor: Tiny = ""
    languages: Annotated[list[Tiny], msgspec.Meta(max_length=32)] = []
    timezone: Tiny = ""
    timezoneOffset: Annotated[int, msgspec.Meta(ge=-1000, le=1000)] | None = None
    screen: Screen | None = None
    hardwareConcurrency: Count | None = None
    deviceMemory: Annotated[float, msgspec.Meta(ge=0, le=4096)] | None = None
    maxTouchPoints: Count | None = None
    touchEvent: bool | None = None
    canvas: Tiny = ""
    webgl: WebGL | None = None
    audio: Tiny = ""
    fonts: Annotated[list[Tiny], msgspec.Meta(max_length=512)] = []
    plugins: Annotated[list[Short], msgspec.Meta(max_length=64)] = []
    storage: Storage | None = None
    automation: Automation | None = None
    math: Tiny = ""


class Mobile(msgspec.Struct, forbid_unknown_fields=False):
    """Fields a native SDK reports; accepted only from a secret key (a server relaying them)."""

    os: Tiny = ""
    osVersion: Tiny = ""
    model: Tiny = ""
    manufacturer: Tiny = ""
    appId: Tiny = ""
    emulator: bool = False
    rooted: bool = False
    clonedApp: bool = False
    deviceId: Tiny = ""


class AgentRequest(msgspec.Struct, forbid_unknown_fields=False):
    components: Components = msgspec.field(default_factory=Components)
    storedVisitorId: Tiny | None = None
    # Drawn by the agent once per browser storage and kept beside the visitor id (storages.py).
    storageId: Tiny | None = None
    type: Tiny | None = None
    linkedId: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    tag: dict[str, str | int | float | bool | None] | None = None
    mobile: Mobile | None = None


def digest(*parts: str) -> bytes:
    """A short, stable hash of component values (16 bytes)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()
