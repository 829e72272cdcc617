"""Which stored visitor, if any, sent these features: evidence weighed by how common it is.

Record linkage in the manner of Fellegi and Sunter: each candidate visitor gets odds that the
request comes from its device, the product of likelihood ratios.

- Agreement says as much as it is rare. Among the visitors of this workspace, how many others
  would agree as well? For an exact match, the visitors holding the same exact key, plus the
  devices not seen yet that would: as many as share the model (the stable features) times the
  share of visitors with these languages and this time zone. For a partial match, the rarest
  band both share stands for the model. A fingerprint held by 500 visitors gives odds near
  1/500; one held by none gives high odds.
- Disagreement costs what the change is worth: each differing feature multiplies the odds by
  how often one device shows that change between two visits (a browser update often re-renders
  the canvas; a new GPU almost never appears).
- A device that has shown a screen before (a laptop docked to its monitor) has not changed by
  showing it again: each visitor keeps the last few screens it showed.
- The network: a request from an address the candidate used multiplies the odds by more when
  few visitors share that address (a household) than when many do (an office or a carrier's
  NAT); a request from elsewhere changes nothing, devices roam. Look-alikes gather where their
  kind is (a household's phones of one model, an office's machines of one image), so the
  address raises the look-alikes not seen yet as much as the candidate: it tells a device from
  a stranger, not from its twin.

The best candidate is answered only when it is more likely than every alternative together,
the new device included; otherwise the device gets a new visitor id. Its probability is the
answer's confidence, before calibration (`calibration.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from . import population
from .matching import Features, Keys
from .population import Population
from .visitor_records import MatchView

# Probability that one device shows this change between two visits, without and with a newer
# browser version (updates re-render canvases, audio stacks and extension lists).
DRIFT: dict[str, float] = {
    "canvas": 0.05, "audio": 0.03, "webgl_renderer": 0.03, "webgl_ext": 0.1, "screen": 0.1,
    "hardware": 0.01, "platform": 0.001, "browser": 0.001, "os": 0.001, "math": 0.05,
    "webgl_vendor": 0.01, "languages": 0.03, "timezone": 0.1, "touch": 0.02, "plugins": 0.1,
    "vendor": 0.01,
}  # fmt: skip
UPDATE_DRIFT: dict[str, float] = {
    **DRIFT, "canvas": 0.5, "audio": 0.3, "webgl_ext": 0.5, "math": 0.3, "plugins": 0.3,
}  # fmt: skip
# Other screens remembered per visitor: a laptop's own panel, a monitor at home, one at work.
OTHER_SCREENS = 3
FONT_DRIFT = 0.01  # another set of fonts
FONT_ONE_DRIFT = 0.05  # one font installed or removed
FONT_PACK_DRIFT = 0.1  # several fonts installed (or removed) at once
# Devices not seen yet that would share a fingerprint, per visitor seen sharing its model.
UNSEEN = 0.5
# Phones are made by the million with identical hardware and software: the first few of a model
# that a workspace sees are not the only ones there are. Visitors assumed to share the model of
# a phone, however few have been counted yet.
PHONE_MODEL_FLOOR = 50
_PHONES = ("iOS", "Android")
# Without its canvas and audio (Brave's farbling, a private window's noise) a desktop is told
# from others of its model by far fewer features: as for phones, its model is assumed to be
# shared by a few visitors before the workspace has counted them.
UNRENDERED_MODEL_FLOOR = 5
_RENDERED = frozenset({"canvas", "audio"})
# The least share of visitors assumed to share a language or a time zone, and the share assumed
# before a workspace has seen many visitors (as if it had seen SHARE_PRIOR_VISITORS more, this
# share of them alike): in a new workspace every visitor speaks its first visitor's language.
SHARE_FLOOR = 0.02
SHARE_PRIOR = 0.1
SHARE_PRIOR_VISITORS = 20
EPSILON = 0.03
# A household address shared with no other visitor, and an address the candidate did not use.
SAME_ADDRESS = 20.0
OTHER_ADDRESS = 1.0
# Another address of the same network: an IPv6 /64 is one household or office (privacy
# addresses change within it), an IPv4 /24 is only the same provider's pool.
SAME_SUBNET_V6 = 10.0
SAME_SUBNET_V4 = 1.5
THRESHOLD = 0.9
# Odds below a thousandth change no decision: a candidate whose changes and network keep its
# odds below that, however few others agree (at least EPSILON), is not counted further.
NEGLIGIBLE = 1e-3
# Bands a candidate must share with the request to be weighed at all. Two changed features
# leave at least two of the nine bands intact, so a candidate sharing fewer differs in three
# features or more: odds far below any answer's.
MIN_SHARED_BANDS = 2
# Changes that make another device, not drift: a copied cookie, or a stored id of a merge.
_OTHER_DEVICE = 1e-4


def _newer(new: Features, old: Features) -> bool:
    try:
        return int(new.values.get("version", "")) > int(old.values.get("version", ""))
    except ValueError:
        return False


def drift(
    new: Features,
    old: Features,
    new_fonts: frozenset[str] | None = None,
    screens: Collection[str] = (),
) -> float:
    """How likely one device shows these differences between two visits (1: none).
    `new_fonts` is `set(new.fonts)`, when the caller compares one request with many; `screens`
    are the other screens the device has shown."""
    theirs = old.values
    changed = [
        name
        for name, value in new.values.items() - theirs.items()
        if name in DRIFT and name in theirs and not (name == "screen" and value in screens)
    ]
    table = UPDATE_DRIFT if changed and _newer(new, old) else DRIFT
    factor = 1.0
    for name in changed:
        factor *= table[name]
    if new.fonts != old.fonts:
        mine = frozenset(new.fonts) if new_fonts is None else new_fonts
        difference = mine.symmetric_difference(old.fonts)
        if len(difference) == 1:
            factor *= FONT_ONE_DRIFT
        elif difference:
            subset = mine.issuperset(old.fonts) or mine.issubset(old.fonts)
            factor *= FONT_PACK_DRIFT if subset else FONT_DRIFT
    return factor


def remember_screen(screens: list[str], old: Features, new: Features) -> list[str]:
    """The other screens a device has shown once it moves from `old` features to `new`."""
    before, now = old.values.get("screen"), new.values.get("screen")
    if before is None or before == now:
        return screens
    return [before, *(s for s in screens if s not in (before, now))][:OTHER_SCREENS]


def same_device(new: Features, stored: Features) -> bool:
    """False on strong contrary evidence: another device, not the same one drifting."""
    return drift(new, stored) > _OTHER_DEVICE


def is_phone(features: Features) -> bool:
    """A device made by the million with identical hardware and software."""
    return features.values.get("os") in _PHONES


def _model_floor(features: Features) -> int:
    if is_phone(features):
        return PHONE_MODEL_FLOOR
    if _RENDERED.isdisjoint(features.values):
        return UNRENDERED_MODEL_FLOOR
    return 1


def _subnet(address: str) -> str:
    if ":" in address:
        return ":".join(address.split(":")[:4])
    return address.rpartition(".")[0]


def _share(pop: Population, kind: bytes, value: bytes | None, visitors: int) -> float:
    if value is None:
        return 1.0
    count = pop.count(kind, value) + SHARE_PRIOR * SHARE_PRIOR_VISITORS
    return max(SHARE_FLOOR, count / (visitors + SHARE_PRIOR_VISITORS))


class Request:
    """What the request brings to the comparison, computed once for all candidates."""

    def __init__(
        self,
        features: Features,
        keys: Keys,
        address: str,
        address_visitors: int,
        pop: Population,
    ) -> None:
        self.features, self.keys = features, keys
        self.exact, self.bands = keys.exact, set(keys.bands)
        self.address, self.address_visitors, self.pop = address, address_visitors, pop
        self.subnet = _subnet(address)
        self._exact_cache: tuple[int, int] | None = None
        self._band_cache: dict[bytes, int] = {}
        self._fonts = frozenset(features.fonts)
        self.visitors = pop.visitors()
        self.floor = _model_floor(features)
        self.languages_share = _share(pop, population.LANGUAGES, keys.languages, self.visitors)
        self.timezone_share = _share(pop, population.TIMEZONE, keys.timezone, self.visitors)

    def _others(self, record: MatchView, network: float) -> float:
        """Visitors other than `record`, seen or not yet, expected to agree as well. Look-alikes
        not seen yet connect from where `record` does as often as it does (a household's
        phones of one model, an office's machines of one image), so the address that favours
        `record` over a random device favours them alike."""
        twin = max(network, 1.0)
        mine, theirs = self.features.values, record.features.values
        # Languages and time zone go together (Spanish and Madrid): the rarer of the two that
        # agree stands for both.
        locale = 1.0
        if mine.get("languages") and mine.get("languages") == theirs.get("languages"):
            locale = min(locale, self.languages_share)
        if mine.get("timezone") and mine.get("timezone") == theirs.get("timezone"):
            locale = min(locale, self.timezone_share)
        if self.exact is not None and self.exact == record.exact:
            seen, sharing = self._exact_counts()
            return max(seen - 1, 0) + UNSEEN * sharing * locale * twin + EPSILON
        shared = self.bands.intersection(record.bands)
        core = min(map(self._band_count, shared), default=self.visitors)
        core = max(core, self.floor)
        return max(core - 1, 0) * locale + UNSEEN * max(core, 1) * locale * twin + EPSILON

    def _exact_counts(self) -> tuple[int, int]:
        """Visitors holding the exact key, and those sharing the model (at least the floor);
        read once per request, as every candidate under the exact key asks."""
        if self._exact_cache is None:
            assert self.exact is not None
            model = self.keys.model
            sharing = self.pop.count(population.MODEL, model) if model is not None else 1
            exact = self.pop.count(population.EXACT, self.exact)
            self._exact_cache = exact, max(sharing, self.floor)
        return self._exact_cache

    def _band_count(self, band: bytes) -> int:
        count = self._band_cache.get(band)
        if count is None:
            count = self._band_cache[band] = self.pop.count(population.BAND, band)
        return count

    def _network(self, record: MatchView) -> float:
        if any(ip == self.address for ip, _ in record.ips):
            return 1.0 + SAME_ADDRESS / max(self.address_visitors - 1, 1)
        if self.subnet and any(_subnet(ip) == self.subnet for ip, _ in record.ips):
            return SAME_SUBNET_V6 if ":" in self.address else SAME_SUBNET_V4
        return OTHER_ADDRESS

    def odds(self, record: MatchView) -> float:
        change = drift(self.features, record.features, self._fonts, record.screens)
        network = self._network(record)
        if change * network < NEGLIGIBLE * EPSILON:  # the odds cannot reach NEGLIGIBLE
            return 0.0
        return change * network / self._others(record, network)


def decide(request: Request, candidates: Iterable[MatchView]) -> tuple[MatchView | None, float]:
    """The visitor to answer (None: a new one) and the probability that the answer is right."""
    best, best_odds, total = None, 0.0, 0.0
    for record in candidates:
        odds = request.odds(record)
        total += odds
        if odds > best_odds:
            best, best_odds = record, odds
    chance = best_odds / (1.0 + total)
    if best is not None and chance >= THRESHOLD:
        return best, chance
    return None, 1.0 / (1.0 + total)
