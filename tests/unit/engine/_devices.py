"""Components of two devices the identification tests start from: a Linux desktop with its own
canvas, GPU and fonts, and an iPhone like millions of others."""

from __future__ import annotations

import copy

DESKTOP = {
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36",
    "platform": "Linux x86_64",
    "languages": ["en-US"],
    "timezone": "Europe/Berlin",
    "screen": {"w": 1920, "h": 1080, "colorDepth": 24},
    "hardwareConcurrency": 8,
    "deviceMemory": 8,
    "maxTouchPoints": 0,
    "canvas": "c0ffee",
    "webgl": {"vendor": "Intel", "renderer": "Mesa UHD 620", "extensions": ["A", "B"]},
    "audio": "124.04",
    "fonts": ["Arial", "DejaVu Sans", "Noto Sans"],
    "math": "m1",
}
PHONE = {
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    "platform": "iPhone",
    "vendor": "Apple Computer, Inc.",
    "languages": ["de-DE"],
    "timezone": "Europe/Berlin",
    "screen": {"w": 393, "h": 852, "colorDepth": 24},
    "hardwareConcurrency": 4,
    "maxTouchPoints": 5,
    "canvas": "a11ce",
    "webgl": {"vendor": "Apple Inc.", "renderer": "Apple GPU", "extensions": ["X"]},
    "audio": "35.7",
    "fonts": ["Helvetica", "Times"],
    "math": "m2",
}


def components(base: dict, **changes: object) -> dict:
    """A copy of `base` with some components changed."""
    c = copy.deepcopy(base)
    c.update(changes)
    return c
