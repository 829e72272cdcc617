"""The simulated clock and the release calendars of browsers, operating systems and drivers.

The clock covers the 60 days that end on 2026-12-03 00:00 UTC. Versions follow each vendor's
cadence: Chrome and Edge ship a major every four weeks (Edge three days after Chrome), Firefox
every four weeks, Safari only with iOS/macOS point releases; Windows gets its cumulative update
on the second Tuesday of each month. A release can re-render the canvas, the audio stack or
change the WebGL extension list; those flags are fixed here, not drawn, so both seeds see the
same calendar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
END = datetime(2026, 12, 3, tzinfo=UTC)
START = END - timedelta(days=60)
END_US = int(END.timestamp() * 1_000_000)
START_US = int(START.timestamp() * 1_000_000)
ITP_CAP_US = 7 * DAY_US  # Safari deletes script-set storage after 7 days without a visit


def at(day: str, hour: int = 17) -> int:
    """The instant of a release: `day` (YYYY-MM-DD) at `hour` UTC, in microseconds."""
    moment = datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


class Release(NamedTuple):
    version: str
    date_us: int
    canvas: bool = False  # re-renders the canvas drawing
    audio: bool = False  # changes the audio-stack hash
    webgl: bool = False  # changes the WebGL extension list


# Chromium majors drive Chrome, Brave and (three days later) Edge; 154 moved to a new Skia
# release (canvas), 155 re-rendered both canvas and audio and exposed a new WebGL extension.
CHROME = (
    Release("152", at("2026-08-25")),
    Release("153", at("2026-09-22")),
    Release("154", at("2026-10-20"), canvas=True),
    Release("155", at("2026-11-17"), canvas=True, audio=True, webgl=True),
)
EDGE = tuple(r._replace(date_us=r.date_us + 3 * DAY_US) for r in CHROME)
BRAVE = tuple(r._replace(date_us=r.date_us + 1 * DAY_US) for r in CHROME)
FIREFOX = (
    Release("155", at("2026-08-18")),
    Release("156", at("2026-09-15")),
    Release("157", at("2026-10-13")),
    Release("158", at("2026-11-10"), canvas=True),
)
# Safari is versioned with the OS: 27.1 re-renders the canvas without a new Safari major.
IOS = (
    Release("26.6", at("2026-07-28")),
    Release("27.0", at("2026-09-15")),
    Release("27.0.1", at("2026-10-06")),
    Release("27.1", at("2026-10-27"), canvas=True),
    Release("27.1.1", at("2026-11-17")),
)
MACOS = IOS  # macOS 27 point releases ship on the same days; 27.1 changes text rendering
# Windows 11 24H2 cumulative updates; November's changes DirectWrite text rendering.
WINDOWS = (
    Release("26100.6584", at("2026-09-08")),
    Release("26100.6899", at("2026-10-13")),
    Release("26100.7171", at("2026-11-10"), canvas=True),
)
BROWSERS = {"Chrome": CHROME, "Edge": EDGE, "Brave": BRAVE, "Firefox": FIREFOX}
OSES = {"iOS": IOS, "macOS": MACOS, "Windows": WINDOWS}
# GPU drivers: the last build of each list is released inside the window, on this day.
DRIVER_RELEASE_US = at("2026-10-29")


def latest(releases: tuple[Release, ...], when_us: int) -> int:
    """Index of the newest release out by `when_us`."""
    index = 0
    for number, release in enumerate(releases):
        if release.date_us <= when_us:
            index = number
    return index


def token(releases: tuple[Release, ...], index: int, flag: str) -> str:
    """The version that last changed `flag` (canvas, audio, webgl) at or before `index`."""
    found = "base"
    for release in releases[: index + 1]:
        if getattr(release, flag):
            found = release.version
    return found


def safari_version(os_version: str) -> str:
    """Safari reports the OS's major.minor: iOS 27.0.1 runs Safari 27.0."""
    major, minor = [*os_version.split("."), "0"][:2]
    return f"{major}.{minor}"
