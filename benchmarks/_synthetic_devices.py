"""Synthetic browser devices for the load and micro benchmarks: components drawn from pools shaped
like real ones (OS, GPU, screen, fonts per OS, hardware, locale), each device distinct.

These are the devices the identification, rule and webhook benchmarks have always sent, kept
as they were so that their figures compare across commits. The drift benchmark's fleet, with
look-alikes and realistic drift, is `_fleet/`.
"""

from __future__ import annotations

import hashlib
import random

OSES = [
    ("Windows", "Win32", "Windows NT 10.0; Win64; x64", 0.45),
    ("macOS", "MacIntel", "Macintosh; Intel Mac OS X 10_15_7", 0.25),
    ("Linux", "Linux x86_64", "X11; Linux x86_64", 0.10),
    ("Android", "Linux armv8l", "Linux; Android 14; K", 0.12),
    ("iOS", "iPhone", "iPhone; CPU iPhone OS 17_4 like Mac OS X", 0.08),
]
GPUS = {
    "Windows": [f"ANGLE (NVIDIA, NVIDIA GeForce {m} Direct3D11)" for m in
                ("GTX 1050", "GTX 1060", "GTX 1650", "RTX 2060", "RTX 3060", "RTX 3070", "RTX 4060", "RTX 4070")]
    + [f"ANGLE (Intel, Intel(R) {m} Graphics Direct3D11)" for m in ("UHD 620", "UHD 630", "Iris Xe", "HD 520")]
    + [f"ANGLE (AMD, AMD Radeon {m} Direct3D11)" for m in ("RX 580", "RX 6600", "Vega 8", "RX 7600")],
    "macOS": ["Apple M1", "Apple M1 Pro", "Apple M2", "Apple M2 Pro", "Apple M3", "Apple M3 Pro",
              "Intel(R) Iris(TM) Plus Graphics 655", "AMD Radeon Pro 5500M"],
    "Linux": ["Mesa Intel(R) UHD Graphics 620", "Mesa Intel(R) Xe Graphics", "AMD Radeon RX 6700 XT",
              "NVIDIA GeForce RTX 3080/PCIe/SSE2", "llvmpipe (LLVM 15.0.6, 256 bits)"],
    "Android": ["Adreno (TM) 640", "Adreno (TM) 650", "Adreno (TM) 730", "Mali-G78", "Mali-G710", "Xclipse 920"],
    "iOS": ["Apple GPU"],
}  # fmt: skip
SCREENS = {
    "Windows": [(1920, 1080), (1366, 768), (2560, 1440), (1536, 864), (1440, 900), (3840, 2160), (1600, 900)],
    "macOS": [(1440, 900), (1512, 982), (1728, 1117), (2560, 1440), (1680, 1050), (1920, 1080)],
    "Linux": [(1920, 1080), (2560, 1440), (1366, 768), (3840, 2160)],
    "Android": [(412, 915), (393, 873), (360, 800), (384, 854), (412, 892)],
    "iOS": [(390, 844), (393, 852), (430, 932), (375, 812), (428, 926)],
}  # fmt: skip
BASE_FONTS = {
    "Windows": ["Arial", "Calibri", "Cambria", "Consolas", "Segoe UI", "Tahoma", "Verdana", "Georgia"],
    "macOS": ["Helvetica", "Helvetica Neue", "Menlo", "Monaco", "SF Pro Text", "Georgia", "Palatino"],
    "Linux": ["DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Mono", "Ubuntu", "Cantarell"],
    "Android": ["Roboto", "Noto Sans", "Droid Sans", "Noto Color Emoji"],
    "iOS": ["Helvetica", "Helvetica Neue", "SF Pro Text", "Menlo"],
}  # fmt: skip
EXTRA_FONTS = [f"Font {i:02d}" for i in range(80)]
ZONES = ["Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Asia/Tokyo",
         "Europe/Paris", "America/Chicago", "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo"]  # fmt: skip
LANGS = [["en-US", "en"], ["de-DE", "de", "en"], ["fr-FR", "fr"], ["ja-JP", "ja"], ["en-GB", "en"],
         ["es-ES", "es"], ["pt-BR", "pt"]]  # fmt: skip
IPS = [f"81.{a}.{b}.{c}" for a in range(2, 6) for b in range(0, 4) for c in range(1, 40)]


def _h(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


class Device:
    def __init__(self, rng: random.Random, index: int) -> None:
        os_name, platform, ua_os, _ = rng.choices(OSES, weights=[o[3] for o in OSES])[0]
        self.index = index
        self.os = os_name
        self.platform = platform
        self.ua_os = ua_os
        self.browser = "Safari" if os_name == "iOS" else rng.choices(
            ["Chrome", "Firefox", "Edge", "Safari"],
            weights=[0.65, 0.12, 0.13, 0.10 if os_name == "macOS" else 0.0],
        )[0]  # fmt: skip
        self.major = rng.randint(118, 124)
        self.gpu = rng.choice(GPUS[os_name])
        self.driver = rng.randint(0, 30)  # driver/build variation behind the same GPU name
        self.screen = rng.choice(SCREENS[os_name])
        self.second_screen = rng.choice(SCREENS[os_name])
        self.on_second = False
        self.cores = rng.choice([2, 4, 6, 8, 10, 12, 16])
        self.memory = rng.choice([2, 4, 8])
        self.fonts = BASE_FONTS[os_name] + rng.sample(EXTRA_FONTS, rng.randint(0, 10))
        self.zone = rng.choice(ZONES)
        self.langs = rng.choice(LANGS)
        self.ext_version = 0
        self.canvas_version = 0
        self.ip = rng.choice(IPS)
        self.stored: str | None = None

    def components(self, private: bool) -> dict:
        w, h = self.second_screen if self.on_second else self.screen
        if self.browser == "Firefox":
            ua = f"Mozilla/5.0 ({self.ua_os}; rv:{self.major}.0) Gecko/20100101 Firefox/{self.major}.0"
        elif self.browser == "Safari":
            ua = f"Mozilla/5.0 ({self.ua_os}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{self.major - 118} Safari/605.1.15"
        else:
            edge = f" Edg/{self.major}.0.0.0" if self.browser == "Edge" else ""
            ua = f"Mozilla/5.0 ({self.ua_os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{self.major}.0.0.0 Safari/537.36{edge}"
        c = {
            "userAgent": ua,
            "platform": self.platform,
            "languages": self.langs,
            "timezone": self.zone,
            "screen": {"w": w, "h": h, "colorDepth": 24},
            "hardwareConcurrency": self.cores,
            "deviceMemory": self.memory if self.browser != "Firefox" else None,
            "maxTouchPoints": 5 if self.os in ("Android", "iOS") else 0,
            "canvas": _h("canvas", self.gpu, self.driver, self.os, self.browser, self.canvas_version),
            "webgl": {
                "vendor": self.gpu.split(" ")[0],
                "renderer": self.gpu,
                "extensions": [f"EXT_{i}" for i in range(20 + self.ext_version % 3)],
            },
            "audio": _h("audio", self.os, self.browser, self.cores > 8),
            "fonts": self.fonts,
            "math": _h("math", self.os, self.browser),
            "storage": {"quota": 300_000_000 if private else 80_000_000_000},
        }  # fmt: skip
        if self.browser in ("Chrome", "Edge"):
            c["clientHints"] = {
                "brands": [{"brand": "Chromium", "version": str(self.major)}],
                "platform": {"iOS": "iOS", "macOS": "macOS"}.get(self.os, self.os),
                "mobile": self.os in ("Android", "iOS"),
            }
        return c

    def drift(self, rng: random.Random) -> list[str]:
        changes = []
        if rng.random() < 0.25:
            self.major += 1
            changes.append("browser_update")
            if rng.random() < 0.5:
                self.canvas_version += 1
                changes.append("canvas")
            if rng.random() < 0.3:
                self.ext_version += 1
        if rng.random() < 0.05:
            self.zone = rng.choice(ZONES)
            self.ip = rng.choice(IPS)
            changes.append("travel")
        if rng.random() < 0.04:
            self.fonts = [*self.fonts, rng.choice(EXTRA_FONTS)]
            changes.append("font")
        if self.os not in ("Android", "iOS") and rng.random() < 0.06:
            self.on_second = not self.on_second
            changes.append("screen")
        return changes
