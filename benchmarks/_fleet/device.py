"""One simulated device: what it is, how its software changes over time, and the components the
agent (src/api/static/agent.js) collects from it at a given instant and in a given window.

A device's state at an instant is a pure function of its timeline (browser and OS versions,
GPU driver, fonts, primary screen), so the components two devices would send at the same
instant can be compared. Hashes (canvas, math) are 16 hex characters like the agent's; audio is
a decimal sum like the agent's; both are functions of what really determines them (OS and its
text stack, browser engine and release, GPU and driver), so devices in the same state render
the same values.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from . import calendar as cal
from .network import City, Household
from .pools import DRIVERS, PLUGINS, WEBGL_BY_VENDOR, WEBGL_COMMON, WEBGL_NEW, Gpu, languages

ENGINE = {"Chrome": "blink", "Edge": "blink", "Brave": "blink", "Firefox": "gecko",
          "Safari": "webkit"}  # fmt: skip
AUDIO_BASE = {"blink": 124.04347527516074, "gecko": 35.74996031448245, "webkit": 35.10893253237009}
VENDOR = {"blink": "Google Inc.", "webkit": "Apple Computer, Inc."}
BRANDS = {"Chrome": "Google Chrome", "Edge": "Microsoft Edge", "Brave": "Brave"}
GREASE = ("Not_A Brand", "Not A(Brand", "Not)A;Brand", "Not/A)Brand")
UA_OS = {
    "Windows": "Windows NT 10.0; Win64; x64",
    "macOS": "Macintosh; Intel Mac OS X 10_15_7",
    "Linux": "X11; Linux x86_64",
    "Android": "Linux; Android 10; K",
    "iOS": "iPhone; CPU iPhone OS 18_6 like Mac OS X",  # frozen since iOS 26
}
PLATFORM = {"Windows": "Win32", "macOS": "MacIntel", "Linux": "Linux x86_64",
            "Android": "Linux armv81", "iOS": "iPhone"}  # fmt: skip
FIREFOX_BUCKET = {"NVIDIA": "NVIDIA GeForce GTX 980", "Intel": "Intel(R) HD Graphics 400",
                  "AMD": "Radeon R9 200 Series"}  # fmt: skip
MOBILE_VENDOR = {"Qualcomm": "Qualcomm", "ARM": "ARM", "Samsung": "Samsung Electronics Co., Ltd.",
                 "Imagination": "Imagination Technologies", "Apple": "Apple Inc."}  # fmt: skip


def h16(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=4096)
def tz_offset(zone: str, day: int) -> int:
    """Date.getTimezoneOffset(): minutes to add to local time to get UTC."""
    moment = datetime.fromtimestamp((cal.START_US // 1_000_000) + day * 86_400, UTC)
    offset = moment.astimezone(ZoneInfo(zone)).utcoffset()
    return -int(offset.total_seconds() // 60) if offset is not None else 0


class State(NamedTuple):
    """What changes over a device's life."""

    browser: int  # index into the browser's release calendar (not used by Safari)
    os: int  # index into the OS calendar (iOS, macOS, Windows)
    driver: int  # index into the GPU's driver builds, -1 when not applicable
    fonts: tuple[str, ...]
    screen: tuple[int, int, float]  # primary screen
    canvas_variant: str  # a driver hotfix on some corporate machines


class Context(NamedTuple):
    """How one visit is made."""

    zone: str
    screen: tuple[int, int, float]
    private: bool
    session: str  # Brave farbling and private-window noise are keyed by session


class Device:
    def __init__(self, index: int, population: str, os: str, browser: str, gpu: Gpu,
                 cores: int, memory: int, disk: int, city: City, lang: str, state: State,
                 *, mobile: bool = False, laptop: bool = True, model: str = "",
                 android: str = "") -> None:  # fmt: skip
        self.index = index
        self.population = population  # phone, corporate or consumer
        self.os = os
        self.browser = browser
        self.engine = ENGINE[browser]
        self.gpu = gpu
        self.cores = cores
        self.memory = memory
        self.disk = disk
        self.city = city
        self.lang = lang
        self.mobile = mobile
        self.laptop = laptop
        self.model = model
        self.android = android
        self.base = state
        self.times: list[int] = []
        self.states: list[State] = [state]
        # Filled by the builder.
        self.household: Household | None = None
        self.carrier = ""
        self.company = ""
        self.office = ""  # the office's NAT address
        self.office_monitor: tuple[int, int, float] | None = None
        self.office_share = 0.0  # corporate: share of days at the office
        self.tunnel_share = 0.0  # corporate: share of home days through the company tunnel
        self.second_screen: tuple[int, int, float] | None = None
        self.second_share = 0.0
        self.private_rate = 0.0
        self.clear_on_exit = False
        self.clears: list[int] = []
        self.vpn_exit = ""
        self.trips: list[tuple[int, int, City]] = []
        self.visits: list[int] = []
        self.near_identical = False
        # Changed by visits.
        self.stored: str | None = None
        self.storage = ""
        self.stored_at = 0
        self.last_visit = 0
        self.sessions = 0

    # -- timeline ---------------------------------------------------------------------------

    def set_timeline(self, changes: list[tuple[int, str, Any]]) -> None:
        """Apply `(instant, field, value)` changes in time order; `fonts` values are added."""
        state = self.base
        self.times, self.states = [], [state]
        for when, name, value in sorted(changes, key=lambda c: c[0]):
            if name == "fonts":
                value = tuple(dict.fromkeys((*state.fonts, *value)))
            if getattr(state, name) == value:
                continue
            state = state._replace(**{name: value})
            self.times.append(when)
            self.states.append(state)

    def state_number(self, t_us: int) -> int:
        return bisect.bisect_right(self.times, t_us)

    def state_at(self, t_us: int) -> State:
        return self.states[self.state_number(t_us)]

    @property
    def itp(self) -> bool:
        """Script-set storage expires after 7 days without a visit (Safari; every iOS browser)."""
        return self.browser == "Safari" or self.os == "iOS"

    @property
    def releases(self) -> tuple[cal.Release, ...]:
        return cal.BROWSERS.get(self.browser, ())

    @property
    def os_releases(self) -> tuple[cal.Release, ...]:
        return cal.OSES.get(self.os, ())

    # -- components ------------------------------------------------------------------------

    def components(self, t_us: int, ctx: Context) -> dict[str, Any]:
        s = self.state_at(t_us)
        farble = self.browser == "Brave"
        noise = farble or (ctx.private and self.browser in ("Safari", "Firefox"))
        session = random.Random(f"{self.index}/{ctx.session}") if noise else None
        langs = languages(self.browser, self.lang)
        cores = self.cores
        if self.engine == "webkit":
            cores = 4 if self.os == "iOS" else min(cores, 8)
        plugins = [] if self.mobile else list(PLUGINS)
        canvas, audio = self._canvas(s), self._audio(s)
        if session is not None:
            canvas = h16("noise", canvas, session.random())
            audio = f"{float(audio) + session.uniform(-1e-7, 1e-7):.14f}"
        if farble and session is not None:
            langs = langs[:1]
            cores = session.randint(2, cores)
            plugins = [*session.sample(plugins, len(plugins)), h16("plugin", session.random())]
        w, h, dpr = ctx.screen
        taskbar = {"Windows": 48, "macOS": 25}.get(self.os, 0)
        day = (t_us - cal.START_US) // cal.DAY_US
        vendor, renderer = self._webgl(s)
        out: dict[str, Any] = {
            "userAgent": self.user_agent(s),
            "clientHints": self._hints(s),
            "platform": PLATFORM[self.os],
            "vendor": VENDOR.get(self.engine, ""),
            "languages": langs,
            "timezone": ctx.zone,
            "timezoneOffset": tz_offset(ctx.zone, day),
            "screen": {"w": w, "h": h, "availW": w, "availH": h - taskbar,
                       "colorDepth": 30 if self.os == "macOS" and dpr > 1 and self.engine == "blink"
                       else 24, "pixelRatio": dpr},
            "hardwareConcurrency": cores,
            "deviceMemory": self.device_memory if self.engine == "blink" else None,
            "maxTouchPoints": 5 if self.mobile else 0,
            "touchEvent": self.mobile,
            "canvas": canvas,
            "webgl": {"vendor": vendor, "renderer": renderer, "extensions": self._extensions(s)},
            "audio": audio,
            "fonts": list(s.fonts),
            "plugins": plugins,
            "storage": {"localStorage": True, "sessionStorage": True, "indexedDB": True,
                        "cookies": True, "quota": self._quota(ctx.private)},
            "automation": {"webdriver": False, "headlessUA": False, "noChromeObject": False,
                           "noPlugins": self.engine == "blink" and not plugins,
                           "noLanguages": False, "zeroOuterSize": False,
                           "permissionsMismatch": False},
            "math": h16("math", self.engine, self.os, self.arch),
        }  # fmt: skip
        return out

    @property
    def device_memory(self) -> float:
        """Chromium rounds down to a power of two and caps at 8."""
        return float(min(8, 1 << (max(self.memory, 1).bit_length() - 1)))

    @property
    def arch(self) -> str:
        return "arm" if self.mobile or self.gpu.vendor == "Apple" else "x86"

    def version(self, s: State) -> str:
        if self.engine == "webkit":
            return cal.safari_version(self.os_releases[s.os].version)
        return self.releases[s.browser].version

    def user_agent(self, s: State) -> str:
        v, os_token = self.version(s), UA_OS[self.os]
        if self.engine == "gecko":
            os_token = os_token.replace("10_15_7", "10.15")
            return f"Mozilla/5.0 ({os_token}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
        if self.engine == "webkit":
            tail = "Mobile/15E148 Safari/604.1" if self.mobile else "Safari/605.1.15"
            return (f"Mozilla/5.0 ({os_token}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    f"Version/{v} {tail}")  # fmt: skip
        mobile = "Mobile " if self.mobile else ""
        edge = f" Edg/{v}.0.0.0" if self.browser == "Edge" else ""
        return (f"Mozilla/5.0 ({os_token}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{v}.0.0.0 {mobile}Safari/537.36{edge}")  # fmt: skip

    def _hints(self, s: State) -> dict[str, Any] | None:
        if self.engine != "blink":
            return None
        v = self.version(s)
        grease = {"brand": GREASE[int(v) % 4], "version": ("8", "99", "24")[int(v) % 3]}
        brands = [{"brand": name, "version": v} for name in ("Chromium", BRANDS[self.browser])]
        platform_version = {"Windows": "19.0.0", "Linux": "6.8.0", "Android": self.android}.get(
            self.os, ""
        )
        if self.os == "macOS":
            platform_version = (self.os_releases[s.os].version + ".0.0")[:6].rstrip(".")
        return {"brands": [grease, *brands], "mobile": self.mobile,
                "platform": {"macOS": "macOS"}.get(self.os, self.os),
                "platformVersion": platform_version,
                "architecture": "" if self.mobile else self.arch,
                "model": self.model if self.os == "Android" else ""}  # fmt: skip

    def _driver(self, s: State) -> str:
        builds = DRIVERS.get((self.os, self.gpu.vendor))
        return builds[s.driver] if builds and s.driver >= 0 else ""

    def _canvas(self, s: State) -> str:
        os_token = cal.token(self.os_releases, s.os, "canvas") if self.os_releases else ""
        browser = cal.token(self.releases, s.browser, "canvas") if self.releases else ""
        # Driver builds come in branches of two; a new branch rasterises differently.
        branch = s.driver // 2 if s.driver >= 0 else -1
        gpu = "Apple GPU" if self.os == "iOS" else self.gpu.name
        return h16("canvas", self.os, os_token, self.engine, browser, gpu, branch, s.canvas_variant)

    def _audio(self, s: State) -> str:
        os_token = cal.token(self.os_releases, s.os, "audio") if self.os_releases else ""
        browser = cal.token(self.releases, s.browser, "audio") if self.releases else ""
        digest = int(h16("audio", self.os, os_token, self.engine, browser, self.arch), 16)
        return f"{AUDIO_BASE[self.engine] + (digest % 100_000) * 1e-13:.14f}"

    def _extensions(self, s: State) -> list[str]:
        out = [*WEBGL_COMMON, *WEBGL_BY_VENDOR["mobile" if self.mobile else "desktop"]]
        if self.engine == "blink":
            out += WEBGL_BY_VENDOR["blink"]
            if cal.token(self.releases, s.browser, "webgl") != "base":
                out += WEBGL_NEW
        if self.engine == "webkit":
            out = [x for x in out if "s3tc" not in x and "timer" not in x]
        return out

    def _webgl(self, s: State) -> tuple[str, str]:
        gpu, os = self.gpu, self.os
        if os == "iOS" or (os == "macOS" and self.engine == "webkit"):
            return "Apple Inc.", "Apple GPU"
        if self.mobile:
            return MOBILE_VENDOR[gpu.vendor], gpu.name
        if os == "macOS":
            if self.engine == "gecko":
                return "Apple", f"{gpu.name.split(' Pro')[0]}, or similar"
            metal = f"ANGLE Metal Renderer: {gpu.name}, Unspecified Version"
            return "Google Inc. (Apple)", f"ANGLE (Apple, {metal})"
        builds = DRIVERS[(os, gpu.vendor)]
        name = gpu.rename if gpu.rename and s.driver == len(builds) - 1 else gpu.name
        d3d, google = "Direct3D11 vs_5_0 ps_5_0", f"Google Inc. ({gpu.vendor})"
        if self.engine == "gecko":  # Firefox reports a bucket, not the model
            bucket = FIREFOX_BUCKET[gpu.vendor]
            if os == "Windows":
                return google, f"ANGLE ({gpu.vendor}, {bucket} {d3d}), or similar"
            return gpu.vendor, f"{bucket}, or similar"
        if os == "Windows":  # ANGLE names the device, not the driver build
            return google, f"ANGLE ({gpu.vendor}, {name} ({gpu.pci}) {d3d}, D3D11)"
        # Linux: the OpenGL version string carries the driver (Mesa or NVIDIA) build.
        driver, gl = self._driver(s), "OpenGL 4.6 (Core Profile) Mesa"
        if gpu.vendor == "NVIDIA":
            nv, gl = "NVIDIA Corporation", f"OpenGL 4.5.0 NVIDIA {driver}"
            return f"Google Inc. ({nv})", f"ANGLE ({nv}, {name}/PCIe/SSE2, {gl})"
        if gpu.vendor == "AMD":
            stack = f"radeonsi, {gpu.chip}, LLVM 19.1.1, DRM 3.57, 6.8.0-48-generic"
            return "Google Inc. (AMD)", f"ANGLE (AMD, {name} ({stack}), {gl} {driver})"
        return "Google Inc. (Intel)", f"ANGLE (Intel, Mesa {name} ({gpu.chip}), {gl} {driver})"

    def _quota(self, private: bool) -> int:
        if self.engine == "gecko":
            return 10 * 1024**3
        if private:  # incognito quotas are bounded by memory, Safari's by a fixed cap
            return 1024**3 if self.engine == "webkit" else int(self.memory * 1024**3 * 0.1)
        return int(self.disk * 1e9 * 0.6)

    def signature(self, t_us: int) -> str:
        """The components at `t_us` in a normal window on the primary screen, without languages,
        time zone and storage: what `near_identical` compares."""
        c = self.components(t_us, Context("UTC", self.state_at(t_us).screen, False, "label"))
        for name in ("languages", "timezone", "timezoneOffset", "storage"):
            del c[name]
        if self.browser == "Brave":  # farbled afresh per session: no site sees the true values
            for name in ("canvas", "audio", "hardwareConcurrency", "plugins"):
                del c[name]
        return repr(sorted(c.items()))
