"""Visitor matching rules on normalised features."""

from __future__ import annotations

import copy

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import matching
from engine.device import Components

BASE = {
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


def feats(**changes) -> matching.Features:
    c = copy.deepcopy(BASE)
    c.update(changes)
    return matching.features(msgspec.convert(c, Components))


def test_identical_components_share_exact_key_and_bands():
    a, b = feats(), feats()
    assert matching.exact_key(a) == matching.exact_key(b) is not None
    assert matching.band_keys(a) == matching.band_keys(b)
    assert len(matching.band_keys(a)) == len(matching.BANDS)


def test_exact_key_ignores_version_timezone_and_orientation():
    a = feats()
    moved = feats(timezone="Asia/Tokyo", screen={"w": 1080, "h": 1920, "colorDepth": 24})
    updated = feats(userAgent=BASE["userAgent"].replace("121.0", "122.0"))
    assert matching.exact_key(a) == matching.exact_key(moved) == matching.exact_key(updated)


def test_exact_key_needs_enough_features():
    sparse = matching.features(Components(userAgent=BASE["userAgent"]))
    assert matching.coverage(sparse) < matching.MIN_COVERAGE
    assert matching.exact_key(sparse) is None


def test_one_font_installed_still_matches_from_anywhere():
    ok, score = matching.matches(feats(fonts=[*BASE["fonts"], "Roboto"]), feats(), False)
    assert ok and score == 1.0


def test_canvas_change_needs_network_evidence_or_an_update():
    changed = feats(canvas="beef")
    assert not matching.matches(changed, feats(), same_network=False)[0]
    assert matching.matches(changed, feats(), same_network=True)[0]
    updated = feats(canvas="beef", userAgent=BASE["userAgent"].replace("121.0", "122.0"))
    assert matching.matches(updated, feats(), same_network=False)[0]
    downgraded = feats(canvas="beef", userAgent=BASE["userAgent"].replace("121.0", "120.0"))
    assert not matching.matches(downgraded, feats(), same_network=False)[0]


def test_two_distinctive_changes_never_match():
    other = feats(canvas="beef", audio="35.1")
    assert not matching.matches(other, feats(), same_network=True)[0]
    twin = feats(fonts=["Arial", "Comic Sans MS", "Impact"], languages=["de-DE"])
    assert not matching.matches(twin, feats(), same_network=True)[0]


def test_fuzzy_confidence_is_bounded_and_monotonic():
    low = matching.fuzzy_confidence(matching.MATCH_THRESHOLD)
    high = matching.fuzzy_confidence(1.0)
    assert 0.8 <= low < high <= 0.96


@settings(max_examples=60, deadline=None)
@given(
    canvas=st.text(min_size=1, max_size=8),
    audio=st.text(min_size=1, max_size=8),
    fonts=st.lists(st.sampled_from(["A", "B", "C", "D", "E", "F"]), max_size=6),
)
def test_similarity_is_symmetric_and_reflexive(canvas, audio, fonts):
    a = feats()
    b = feats(canvas=canvas, audio=audio, fonts=fonts)
    assert matching.similarity(a, a) == 1.0
    assert matching.similarity(a, b) == pytest.approx(matching.similarity(b, a))
    assert 0.0 <= matching.similarity(a, b) <= 1.0
