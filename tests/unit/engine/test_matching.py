"""Features and the keys that find a visitor: what changes them and what does not."""

from __future__ import annotations

import msgspec
from _devices import DESKTOP, components

from engine import matching, signals
from engine.device import Components


def feats(**changes) -> matching.Features:
    c = msgspec.convert(components(DESKTOP, **changes), Components)
    return matching.features(c, private=signals.incognito(c))


def _exact(f: matching.Features) -> bytes | None:
    return matching.keys(f).exact


def test_identical_components_share_exact_key_and_bands():
    a, b = feats(), feats()
    assert _exact(a) == _exact(b) is not None
    assert matching.band_keys(a) == matching.band_keys(b)
    assert len(matching.band_keys(a)) == len(matching.BANDS)


def test_exact_key_ignores_version_and_orientation_but_not_locale():
    a = feats()
    rotated = feats(screen={"w": 1080, "h": 1920, "colorDepth": 24})
    updated = feats(userAgent=DESKTOP["userAgent"].replace("121.0", "122.0"))
    assert _exact(a) == _exact(rotated) == _exact(updated)
    # Look-alike devices in two places: one model, two exact keys.
    elsewhere = feats(languages=["de-DE"], timezone="America/New_York")
    assert _exact(elsewhere) != _exact(a)
    assert matching.model_key(elsewhere) == matching.model_key(a)


def test_exact_key_needs_enough_features():
    sparse = matching.features(Components(userAgent=DESKTOP["userAgent"]))
    assert matching.coverage(sparse) < matching.MIN_COVERAGE
    assert _exact(sparse) is None and matching.model_key(sparse) is None


_BRAVE_HINTS = {
    "brands": [{"brand": "Brave", "version": "121"}, {"brand": "Chromium", "version": "121"}]
}


def test_brave_readings_drawn_per_session_are_not_features():
    one = feats(clientHints=_BRAVE_HINTS, canvas="aa", audio="1.1", hardwareConcurrency=2)
    other = feats(clientHints=_BRAVE_HINTS, canvas="bb", audio="2.2", hardwareConcurrency=6)
    assert _exact(one) == _exact(other) is not None
    assert one.values["browser"] == "Brave"
    assert "canvas" not in one.values and "audio" not in one.values
    # The same browser without Brave's brand: those readings are the device's own.
    assert _exact(feats(canvas="aa")) != _exact(feats(canvas="bb"))


def test_private_window_noise_of_safari_and_firefox_is_not_a_feature():
    firefox = DESKTOP["userAgent"].split(" AppleWebKit")[0] + " Gecko/20100101 Firefox/121.0"
    private = {"quota": 500_000_000}
    one = feats(userAgent=firefox, canvas="aa", audio="1.1", storage=private)
    other = feats(userAgent=firefox, canvas="bb", audio="2.2", storage=private)
    assert _exact(one) == _exact(other) is not None
    normal = {"quota": 60_000_000_000}
    assert feats(userAgent=firefox, canvas="aa", storage=normal).values["canvas"] == "aa"
    # Chromium's incognito does not add noise: its canvas stays evidence.
    assert feats(canvas="aa", storage=private).values["canvas"] == "aa"
