"""The features of a device and the keys that find its visitor.

Components are normalised into features; the exact key (every stable feature, with languages
and time zone) and the band keys (small groups of features, so that any one change leaves
other bands intact) index visitors. Which candidate is the device is weighed in `linkage.py`;
docs/identification.md explains both.
"""

from __future__ import annotations

import msgspec

from .device import Components, digest
from .signals import user_agent

# How much each feature tells about a device (distinctive and stable ones most): a device whose
# features weigh too little in all is not matched at all.
WEIGHTS: dict[str, float] = {
    "canvas": 3.0,
    "webgl_renderer": 2.5,
    "audio": 2.0,
    "fonts": 2.0,
    "screen": 1.5,
    "webgl_ext": 1.0,
    "hardware": 1.0,
    "platform": 1.0,
    "browser": 1.0,
    "os": 1.0,
    "math": 1.0,
    "webgl_vendor": 0.5,
    "languages": 0.5,
    "timezone": 0.5,
    "touch": 0.5,
    "plugins": 0.5,
    "vendor": 0.25,
}
TOTAL_WEIGHT = sum(WEIGHTS.values())
# Features that never change when cookies are cleared or a private window opens, and rarely
# otherwise. Browser version and time zone are left out: updates and travel change them.
EXACT = ("canvas", "webgl_renderer", "webgl_vendor", "audio", "fonts", "screen", "hardware",
         "platform", "browser", "os", "math", "touch")  # fmt: skip
BANDS: tuple[tuple[str, ...], ...] = (
    ("canvas", "webgl_renderer", "screen"),
    ("audio", "fonts", "hardware"),
    ("canvas", "audio", "platform"),
    ("webgl_renderer", "webgl_ext", "fonts"),
    ("screen", "hardware", "platform", "webgl_vendor", "math"),
    ("canvas", "fonts"),
    ("audio", "webgl_renderer"),
    ("webgl_renderer", "screen", "hardware", "languages"),
    ("audio", "hardware", "languages", "platform"),
)
_BAND_SETS = [frozenset(names) for names in BANDS]
_BAND_TAGS = [bytes([number]) for number in range(len(BANDS))]
MIN_COVERAGE = 0.6
# Readings some browsers draw afresh for every session, so that they tell nothing about the
# device. Brave "farbles" canvas, audio, plugins and its core count in every window, and names
# itself only in the client hints' brands. Safari and Firefox add noise to canvas and audio in
# private windows (the incognito signal).
_FARBLING_BRANDS = frozenset({"Brave"})
_FARBLED = frozenset({"canvas", "audio", "plugins"})
_PRIVATE_NOISE_BROWSERS = frozenset({"Safari", "Mobile Safari", "Firefox", "Firefox Mobile"})
_PRIVATE_NOISE = frozenset({"canvas", "audio"})


class Features(msgspec.Struct, array_like=True):
    """Normalised components; strings for equality, a sorted list for set similarity."""

    values: dict[str, str]
    fonts: list[str]


def _farbling_brand(c: Components) -> str | None:
    hints = c.clientHints
    if hints is None:
        return None
    return next((b.brand for b in hints.brands if b.brand in _FARBLING_BRANDS), None)


def features(c: Components, private: bool = False) -> Features:
    """`private`: the request comes from a private window (`signals.incognito`)."""
    ua = user_agent(c.userAgent)
    values: dict[str, str] = {}
    farbling = _farbling_brand(c)
    browser = farbling or (ua.browser if c.userAgent else "")
    noise: frozenset[str] = frozenset()
    if farbling:
        noise = _FARBLED
    elif private and browser in _PRIVATE_NOISE_BROWSERS:
        noise = _PRIVATE_NOISE

    def put(name: str, value: object) -> None:
        if value not in (None, "", (), []) and name not in noise:
            values[name] = str(value)

    put("canvas", c.canvas)
    put("audio", c.audio)
    put("math", c.math)
    put("platform", c.platform)
    put("vendor", c.vendor)
    put("timezone", c.timezone)
    put("languages", ",".join(c.languages))
    put("browser", browser)
    put("version", ua.major if c.userAgent else "")  # not weighed: explains canvas changes
    put("os", ua.os if c.userAgent else "")
    if c.webgl is not None:
        put("webgl_vendor", c.webgl.vendor)
        put("webgl_renderer", c.webgl.renderer)
        put("webgl_ext", digest(*sorted(c.webgl.extensions)).hex() if c.webgl.extensions else "")
    if c.screen is not None and (c.screen.w or c.screen.h):
        # Orientation does not make another device.
        w, h = sorted((c.screen.w, c.screen.h))
        put("screen", f"{w}x{h}x{c.screen.colorDepth}")
    if c.hardwareConcurrency is not None or c.deviceMemory is not None:
        cores = None if farbling else c.hardwareConcurrency
        put("hardware", f"{cores}/{c.deviceMemory}")
    if c.maxTouchPoints is not None or c.touchEvent is not None:
        put("touch", f"{c.maxTouchPoints}/{c.touchEvent}")
    put("plugins", digest(*sorted(c.plugins)).hex() if c.plugins else "")
    fonts = sorted(set(c.fonts))
    if fonts:
        values["fonts"] = digest(*fonts).hex()
    return Features(values, fonts)


def coverage(f: Features) -> float:
    return sum(WEIGHTS[name] for name in f.values if name in WEIGHTS) / TOTAL_WEIGHT


def model_key(f: Features) -> bytes | None:
    """The stable features alone: every device of one model, image and software shares it.
    None when too little is known to claim that equal keys mean one kind of device."""
    if coverage(f) < MIN_COVERAGE:
        return None
    return digest(*(f.values.get(name, "") for name in EXACT))


def band_keys(f: Features) -> list[bytes]:
    values = f.values
    present = values.keys()
    return [
        _BAND_TAGS[number] + digest(*[values[n] for n in names])
        for number, names in enumerate(BANDS)
        if present >= _BAND_SETS[number]
    ]


class Keys(msgspec.Struct, frozen=True):
    """Every key of one set of features, computed once, outside the writer: the index keys
    and the digests the population counts are kept under. `exact` is the model key with
    languages and time zone: what clearing storage or opening a private window leaves
    unchanged (look-alike devices in one place still share it)."""

    exact: bytes | None
    bands: list[bytes]
    model: bytes | None
    languages: bytes | None
    timezone: bytes | None


def keys(f: Features) -> Keys:
    model = model_key(f)
    languages, timezone = f.values.get("languages"), f.values.get("timezone")
    exact = None
    if model is not None:
        exact = digest(model.hex(), languages or "", timezone or "")
    return Keys(
        exact=exact,
        bands=band_keys(f),
        model=model,
        languages=digest(languages) if languages else None,
        timezone=digest(timezone) if timezone else None,
    )


def new_visitor_confidence(f: Features) -> float:
    """How sure we are that an unmatched device is new: lower when it reports little."""
    return round(0.5 + 0.49 * min(1.0, coverage(f) / 0.9), 3)
