"""One visit: where the device connects from, which screen and window it uses, whether it still
holds the visitor id it stored, and the request the agent sends.

Per visit:
- phones: home Wi-Fi 50 %, their carrier's NAT pool 40 %, a café 10 %; on a trip: roaming
  (home-routed, so still the home carrier's pool) or the hotel, half each;
- consumer laptops: home 85 %, café 10 %, tethered to their phone's carrier 5 %; desktops: home;
  on a trip (laptops only): the hotel 80 %, tethering 20 %; VPN users go out through an exit on
  70 % of visits (their usual exit three times in four);
- corporate laptops (weekdays only): at the office with the machine's office share (40-80 %),
  docked to the office's standard monitor on 70 % of those days; from home through the company
  tunnel (a shared gateway) with the machine's tunnel share, else the home line; on a business
  trip the tunnel or the hotel;
- a private window with the device's private rate: no stored id is sent, nothing is stored,
  Safari and Firefox add canvas and audio noise for the window's session; Brave farbles canvas,
  audio, hardwareConcurrency and plugins per session in every window (and reports only its
  first language), a new session starting after a gap of 8 hours with probability 0.85;
- the stored id (cookie + localStorage, the last visitor id answered) is sent unless the window
  is private, the browser clears site data on exit, the user cleared it since, or Safari's ITP
  deleted it (7 days without a visit) and the server's own cookie did not outlive it (it does
  when the agent's endpoint is on the site's own host: `first_party`).
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from .calendar import HOUR_US, ITP_CAP_US
from .device import Context, Device
from .network import Networks

STATE_FIELDS = ("browser", "os", "driver", "fonts", "screen")


class Visit(NamedTuple):
    components: dict[str, Any]
    ip: str
    stored: str | None
    storage: str  # the storage id the agent sends beside the stored id
    flags: dict[str, Any]


def _trip(device: Device, t_us: int):
    for start, end, city in device.trips:
        if start <= t_us < end:
            return city
    return None


def _network(device: Device, t_us: int, nets: Networks, rng: random.Random) -> tuple[str, str]:
    trip = _trip(device, t_us)
    city, r = device.city, rng.random()
    home = device.household
    assert home is not None
    if device.population == "corporate":
        if trip is not None:
            return ("gateway", rng.choice(nets.gateways[city.region])) if r < 0.7 else (
                "hotel", rng.choice(nets.hotels[trip.name]))  # fmt: skip
        if r < device.office_share:
            return "office", device.office
        if rng.random() < device.tunnel_share:
            return "gateway", rng.choice(nets.gateways[city.region])
        return "home", nets.home(home, device.index, t_us)
    if device.vpn_exit and rng.random() < 0.7:
        exit_ = device.vpn_exit if rng.random() < 0.75 else rng.choice(nets.vpn_exits)
        return "vpn", exit_
    if device.mobile:
        if trip is not None:
            if r < 0.5:
                return "carrier", nets.carrier(city, device.carrier, rng)
            return "hotel", rng.choice(nets.hotels[trip.name])
        if r < 0.5:
            return "home", nets.home(home, device.index, t_us)
        if r < 0.9:
            return "carrier", nets.carrier(city, device.carrier, rng)
        return "cafe", rng.choice(nets.cafes[city.name])
    if trip is not None:
        if r < 0.8:
            return "hotel", rng.choice(nets.hotels[trip.name])
        return "carrier", nets.carrier(city, device.carrier, rng)
    if device.laptop and r < 0.1:
        return "cafe", rng.choice(nets.cafes[city.name])
    if device.laptop and r < 0.15:
        return "carrier", nets.carrier(city, device.carrier, rng)
    return "home", nets.home(home, device.index, t_us)


def _screen(device: Device, t_us: int, network: str, rng: random.Random):
    primary = device.state_at(t_us).screen
    if network == "office" and device.office_monitor and rng.random() < 0.7:
        return device.office_monitor
    at_home = network in ("home", "gateway", "vpn")
    if at_home and device.second_screen and rng.random() < device.second_share:
        return device.second_screen
    return primary


def make_visit(
    device: Device, t_us: int, nets: Networks, rng: random.Random, first_party: bool = True
) -> Visit:
    first = not device.last_visit
    kind, ip = _network(device, t_us, nets, rng)
    trip = _trip(device, t_us)
    zone = (trip or device.city).zone
    screen = _screen(device, t_us, kind, rng)
    private = rng.random() < device.private_rate
    farbled = device.browser == "Brave"
    if (
        private
        or first
        or (farbled and t_us - device.last_visit > 8 * HOUR_US and rng.random() < 0.85)
    ):
        device.sessions += 1
    session = f"{'p' if private else 's'}{device.sessions}"
    comps = device.components(t_us, Context(zone, screen, private, session))

    stored, itp_expired, cleared = None, False, False
    if device.stored is not None and not private:
        if device.clear_on_exit or any(device.stored_at < c <= t_us for c in device.clears):
            cleared = True
        elif device.itp and t_us - device.stored_at > ITP_CAP_US:
            itp_expired = True
            if first_party:  # the server's cookie is not script storage: ITP leaves it
                stored = device.stored
        else:
            stored = device.stored
    # A storage keeps its id as long as it keeps the visitor id; any other visit starts afresh.
    storage = device.storage if stored is not None else f"{device.index}/{session}/{t_us}"
    before = device.state_at(device.last_visit) if not first else None
    now = device.state_at(t_us)
    changes = []
    if before is not None:
        changes = [f for f in STATE_FIELDS if getattr(before, f) != getattr(now, f)]
    flags = {
        "network": kind,
        "private": private,
        "farbled": farbled,
        "noise": farbled or (private and device.browser in ("Safari", "Firefox")),
        "travel": trip is not None,
        "other_screen": screen != now.screen,
        "itp_expired": itp_expired,
        "cleared": cleared,
        "changes": changes,
    }
    return Visit(comps, ip, stored, storage, flags)


def answered(device: Device, t_us: int, visitor_id: str, private: bool, storage: str) -> None:
    """The agent stores the answer's visitor id, beside its storage id, in a normal window."""
    device.last_visit = t_us
    if not private:
        if device.clear_on_exit:
            device.stored = "cleared"  # the value is gone by the next visit
        else:
            device.stored, device.storage = visitor_id, storage
        device.stored_at = t_us
