"""Visitor matching: which known device, if any, sent these components.

Three steps, most certain first:
1. the visitor id the agent stored (cookie, localStorage), when the device still agrees with it;
2. an exact match of the stable components (what stays when cookies are cleared or a private
   window is opened);
3. a fuzzy match: candidates come from locality-sensitive "bands" (hashes of small groups of
   components, so that any one change leaves other bands intact) and are scored by a weighted
   similarity in which each component's weight reflects how stable and how distinctive it is.

docs/identification.md explains the weights and the trade-off between keeping a drifting device
and merging two different ones.
"""

from __future__ import annotations

import msgspec

from .device import Components, digest
from .signals import user_agent

# Weight of each feature in the similarity: distinctive and stable features weigh most.
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
MATCH_THRESHOLD = 0.75
# Features that tell two devices of one model apart; see `matches`.
DISTINCTIVE = frozenset({"canvas", "webgl_renderer", "audio", "fonts", "hardware", "languages"})
MAX_DISTINCTIVE_MISMATCHES = 1
MIN_COVERAGE = 0.6
STORED_ID_THRESHOLD = 0.6


class Features(msgspec.Struct, array_like=True):
    """Normalised components; strings for equality, a sorted list for set similarity."""

    values: dict[str, str]
    fonts: list[str]


def features(c: Components) -> Features:
    ua = user_agent(c.userAgent)
    values: dict[str, str] = {}

    def put(name: str, value: object) -> None:
        if value not in (None, "", (), []):
            values[name] = str(value)

    put("canvas", c.canvas)
    put("audio", c.audio)
    put("math", c.math)
    put("platform", c.platform)
    put("vendor", c.vendor)
    put("timezone", c.timezone)
    put("languages", ",".join(c.languages))
    put("browser", ua.browser if c.userAgent else "")
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
        put("hardware", f"{c.hardwareConcurrency}/{c.deviceMemory}")
    if c.maxTouchPoints is not None or c.touchEvent is not None:
        put("touch", f"{c.maxTouchPoints}/{c.touchEvent}")
    put("plugins", digest(*sorted(c.plugins)).hex() if c.plugins else "")
    fonts = sorted(set(c.fonts))
    if fonts:
        values["fonts"] = digest(*fonts).hex()
    return Features(values, fonts)


def coverage(f: Features) -> float:
    return sum(WEIGHTS[name] for name in f.values if name in WEIGHTS) / TOTAL_WEIGHT


def exact_key(f: Features) -> bytes | None:
    """None when too little is known to claim that equal keys mean one device."""
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


def _fonts_agree(a: list[str], b: list[str]) -> bool:
    # Installing or removing one font is drift; two different devices differ in several.
    return len(set(a) ^ set(b)) <= 1


def compare(a: Features, b: Features) -> tuple[float, int]:
    """Weighted share of agreeing features among those both sides report, and how many of the
    distinctive features disagree."""
    total = agree = 0.0
    strong_mismatches = 0
    for name, weight in WEIGHTS.items():
        va, vb = a.values.get(name), b.values.get(name)
        if va is None or vb is None:
            continue
        total += weight
        same = _fonts_agree(a.fonts, b.fonts) if name == "fonts" else va == vb
        if same:
            agree += weight
        elif name in DISTINCTIVE:
            strong_mismatches += 1
    return (agree / total if total else 0.0), strong_mismatches


def similarity(a: Features, b: Features) -> float:
    return compare(a, b)[0]


def matches(a: Features, b: Features, same_network: bool) -> tuple[bool, float]:
    """Same device? Real drift changes one distinctive feature at a time (a browser update
    re-renders the canvas, a font gets installed), while two devices of one model differ in
    several. So one distinctive feature may disagree, but only when the request comes from an
    address the candidate used in the last day; from elsewhere all must agree. The weighted
    agreement must reach the threshold either way."""
    score, strong = compare(a, b)
    allowed = MAX_DISTINCTIVE_MISMATCHES if same_network or _updated(a, b) else 0
    return strong <= allowed and score >= MATCH_THRESHOLD, score


def _updated(new: Features, old: Features) -> bool:
    """A newer browser version with a new canvas: browser updates re-render the canvas."""
    try:
        newer = int(new.values.get("version", "")) > int(old.values.get("version", ""))
    except ValueError:
        return False
    return newer and new.values.get("canvas") != old.values.get("canvas")


def fuzzy_confidence(score: float) -> float:
    """Map a similarity above the threshold to a confidence between 0.80 and 0.96."""
    span = (score - MATCH_THRESHOLD) / (1.0 - MATCH_THRESHOLD)
    return round(0.80 + 0.16 * max(0.0, min(1.0, span)), 3)


def new_visitor_confidence(f: Features) -> float:
    """How sure we are that an unmatched device is new: lower when it reports little."""
    return round(0.5 + 0.49 * min(1.0, coverage(f) / 0.9), 3)
