"""Features and the keys that find a visitor: what changes them and what does not."""

from __future__ import annotations

import msgspec
from _devices import DESKTOP, components

from engine import matching
from engine.device import Components


def feats(**changes) -> matching.Features:
    return matching.features(msgspec.convert(components(DESKTOP, **changes), Components))


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
