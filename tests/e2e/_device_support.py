"""Shared fixtures data for the device API tests: a realistic Chrome-on-Linux payload."""

from __future__ import annotations

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36"
)
COMPONENTS = {
    "userAgent": CHROME_UA,
    "clientHints": {"brands": [{"brand": "Chromium", "version": "121"}], "platform": "Linux"},
    "platform": "Linux x86_64",
    "languages": ["en-US", "en"],
    "timezone": "Europe/Berlin",
    "screen": {"w": 1920, "h": 1080, "colorDepth": 24},
    "hardwareConcurrency": 8,
    "deviceMemory": 8,
    "maxTouchPoints": 0,
    "canvas": "9f3c1a77aa01b2c3",
    "webgl": {"vendor": "Intel", "renderer": "Mesa Intel(R) UHD 620", "extensions": ["A", "B"]},
    "audio": "124.04347527516074",
    "fonts": ["Arial", "DejaVu Sans", "Liberation Serif"],
    "math": "0a1b2c3d4e5f6071",
    "storage": {"quota": 60_000_000_000, "localStorage": True, "indexedDB": True},
}
