"""Build a fleet: three populations, their households, drift timelines and visit schedules.

Populations (shares of the fleet):
- phones, 35 %: popular models (five iPhones, three Androids) on identical software (iOS 27.0
  with Safari, or Chrome 153), in eight cities; units of a model differ only in language,
  time zone, carrier and home;
- corporate, 20 %: five laptop images (four Windows, one macOS), each deployed to three offices
  (fifteen offices of ~dozens of machines behind one NAT address, the office's locale and time
  zone); 40 % of machines differ from their image in exactly one feature: an extra font or two,
  a CPU with more cores, a driver hotfix (canvas), an English or Spanish browser UI, or
  another panel; IT pushes browser and OS updates to a whole image within days;
- consumer, 45 %: Windows 55 %, macOS 25 %, Linux 5 %, Android phones 15 % (a long tail of
  400 models), drawn from hardware pools (GPU and one of eight driver builds, screen, cores,
  memory, fonts) and browsers (Chrome, Edge, Firefox, Safari, Brave); 15 % start one browser
  major behind, 40 % of Macs one macOS release behind.

Drift over the 60 days (consumer and phone rates per device; corporate by image):
- browser majors from the calendar: desktop devices install a release 0-7 days after it plus
  a restart (mean 2.5 days), 4 % never do; Android Chrome 0-10 days plus a mean of 3, 8 % never;
- iOS point releases: 25 % within 3 days, 45 % after 2 days plus a mean of 12, 30 % never;
  macOS: 15 % within 3 days, 45 % after 3 plus a mean of 15, 40 % never; Windows cumulative
  updates: within 3 days plus a mean of 3, 10 % never;
- a new GPU driver build (out 2026-10-29) installed by 35 % of NVIDIA, 15 % of Intel/AMD
  Windows machines and 40 % of Linux machines (mean 7 days later); IT pushes it to an image
  with probability 0.4; a new branch re-renders the canvas, Linux renderer strings name the
  build and two Windows GPUs are renamed by it;
- 6 % of desktops and laptops install an application's fonts (a pack half the time: Office,
  LibreOffice, msttcorefonts, Google fonts) or one font; 3 % of desktops get a new monitor;
- a second monitor: 20 % of desktops (35 % of visits), home monitors for 30 % of consumer laptops
  (60 %) and 40 % of corporate laptops (80 % of home days);
- trips of 2-10 days to another city (time zone and network): 10 % of phones, 8 % of laptops
  and consumer Android phones; 2-5 days for 10 % of corporate laptops;
- private windows on 10 % of phone visits, 7 % of consumer and 2 % of corporate visits;
- cookies cleared once by 8 % of phones, 12 % of consumers, 3 % of corporate machines; 4 % of
  consumers (not Safari) clear site data whenever the browser closes, as does one image;
- 5 % of consumers use a VPN.

Visits: each device's visits fall inside an active span of its own (60 days for 40 %, 14-40 for
35 %, 3-14 for 25 %), at waking hours of its home time zone; corporate visits on weekdays.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from . import calendar as cal
from .device import Device, State, tz_offset
from .network import CITIES, CITY_WEIGHTS, City, Household, Networks
from .pools import (
    BASE_FONTS,
    DISKS,
    DRIVER_AGE_WEIGHTS,
    DRIVERS,
    FONT_PACKS,
    IMAGES,
    LAPTOP_PANELS,
    LINUX_GPUS,
    MACS,
    MONITORS,
    OTHER_ANDROIDS,
    PC_CORES,
    PC_MEMORY,
    POPULAR_PHONES,
    SINGLE_FONTS,
    WINDOWS_GPUS,
    Gpu,
)

Change = tuple[int, str, Any]
DAY = cal.DAY_US


class Fleet(NamedTuple):
    devices: list[Device]
    networks: Networks
    schedule: list[tuple[int, int, int]]  # (instant, device, visit number), in time order


def pick(rng: random.Random, table):
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights)[0]


def _lag(habit: float, rng: random.Random, kind: str) -> float | None:
    """Days between a release and its installation on one device; None: not in the window.
    `habit` (uniform, drawn once per device) says how quickly this device updates."""
    if kind == "desktop":
        return None if habit < 0.04 else rng.uniform(0, 7) + rng.expovariate(1 / 2.5)
    if kind == "android":
        return None if habit < 0.08 else rng.uniform(0, 10) + rng.expovariate(1 / 3)
    if kind in ("ios", "macos"):
        quick, never = (0.25, 0.7) if kind == "ios" else (0.15, 0.6)
        if habit < quick:
            return rng.uniform(0.5, 3)
        if habit > never:
            return None
        return (2 if kind == "ios" else 3) + rng.expovariate(1 / (12 if kind == "ios" else 15))
    return None if habit < 0.1 else rng.uniform(0, 3) + rng.expovariate(1 / 3)  # windows


def _updates(rng: random.Random, field: str, releases, base: int, kind: str) -> list[Change]:
    """One installation per later release; each installs the newest release out by then."""
    out: list[Change] = []
    habit = rng.random()
    for release in releases[base + 1 :]:
        lag = _lag(habit, rng, kind)
        if lag is not None:
            when = release.date_us + int(lag * DAY)
            out.append((when, field, cal.latest(releases, when)))
    return out


def _it_push(image_rng: random.Random, field: str, releases, base: int, machine: random.Random,
             delay: tuple[float, float]) -> list[Change]:  # fmt: skip
    """IT approves a release for the image after `delay` days; machines follow within days."""
    out: list[Change] = []
    for release in releases[base + 1 :]:
        push = release.date_us + int(image_rng.uniform(*delay) * DAY)
        when = push + int((machine.uniform(0, 1.5) + machine.expovariate(1.0)) * DAY)
        out.append((when, field, cal.latest(releases, when)))
    return out


def _when(rng: random.Random) -> int:
    return cal.START_US + int(rng.random() * (cal.END_US - cal.START_US))


def _font_install(rng: random.Random, os: str, fonts: tuple[str, ...]) -> tuple[str, ...]:
    packs = [p for p, (names, share) in FONT_PACKS.items() if os in share]
    if packs and rng.random() < 0.5:
        return FONT_PACKS[rng.choice(packs)][0]
    return (rng.choice([f for f in SINGLE_FONTS if f not in fonts] or list(SINGLE_FONTS)),)


def _trip(rng: random.Random, device: Device, days: tuple[float, float]) -> None:
    start = _when(rng)
    city = rng.choice([c for c in CITIES if c.name != device.city.name])
    device.trips.append((start, start + int(rng.uniform(*days) * DAY), city))


def _phone(index: int, rng: random.Random) -> Device:
    phone = pick(rng, POPULAR_PHONES)
    city: City = pick(rng, zip(CITIES, CITY_WEIGHTS, strict=True))
    lang = "en-US" if rng.random() < 0.1 else city.lang
    ios = phone.os == "iOS"
    state = State(1, 1 if ios else 0, -1, BASE_FONTS[phone.os], phone.screen, "")
    device = Device(index, "phone", phone.os, "Safari" if ios else "Chrome", phone.gpu,
                    phone.cores, phone.memory, pick(rng, ((128, 0.5), (256, 0.4), (512, 0.1))),
                    city, lang, state, mobile=True, laptop=False, model=phone.model,
                    android=phone.android)  # fmt: skip
    if ios:
        changes = _updates(rng, "os", cal.IOS, 1, "ios")
    else:
        changes = _updates(rng, "browser", cal.CHROME, 1, "android")
    device.set_timeline(changes)
    device.carrier = rng.choice(city.carriers)
    device.private_rate = 0.10
    device.clears = [_when(rng)] if rng.random() < 0.08 else []
    if rng.random() < 0.10:
        _trip(rng, device, (2, 10))
    return device


def _groups() -> list[tuple[Any, City]]:
    by_name = {c.name: c for c in CITIES}
    return [(image, by_name[office]) for image in IMAGES for office in image.offices]


def _corporate(index: int, rng: random.Random, nets: Networks, seed: int) -> Device:
    groups = _groups()
    image, city = groups[index % len(groups)]
    it = random.Random(f"{seed}/image/{image.company}")  # the image's IT schedule
    driver = image.driver if image.os == "Windows" else -1
    fonts = tuple(dict.fromkeys((*BASE_FONTS[image.os], *image.fonts)))
    state = State(1, 1 if image.os == "macOS" else 0, driver, fonts, image.panel, "")
    lang, cores = city.lang, image.cores
    variant = rng.choice(("fonts", "hardware", "canvas", "languages", "screen"))
    if rng.random() < 0.4:
        if variant == "fonts":
            extra = rng.sample([f for f in SINGLE_FONTS if f not in fonts], rng.randint(1, 2))
            state = state._replace(fonts=(*fonts, *extra))
        elif variant == "hardware":
            cores += 4
        elif variant == "canvas":
            state = state._replace(canvas_variant="hotfix")
        elif variant == "languages":
            lang = "en-US" if city.lang != "en-US" else "es-ES"
        else:
            panels = [p for p, _ in LAPTOP_PANELS if p != image.panel]
            state = state._replace(screen=rng.choice(panels))
    device = Device(index, "corporate", image.os, image.browser, image.gpu, cores, image.memory,
                    512, city, lang, state)  # fmt: skip
    machine = random.Random(rng.random())
    changes = _it_push(random.Random(it.random()), "browser", cal.BROWSERS[image.browser], 1,
                       machine, (2, 9))  # fmt: skip
    if image.os == "Windows":
        changes += _it_push(random.Random(it.random()), "os", cal.WINDOWS, 0, machine, (3, 8))
        if it.random() < 0.4:  # this image gets the new driver build
            push = cal.DRIVER_RELEASE_US + int(it.uniform(5, 15) * DAY)
            last = len(DRIVERS[("Windows", image.gpu.vendor)]) - 1
            changes.append((push + int(machine.uniform(0, 2) * DAY), "driver", last))
    else:
        changes += _it_push(random.Random(it.random()), "os", cal.MACOS, 1, machine, (5, 12))
    if rng.random() < 0.03:
        changes.append((_when(rng), "fonts", _font_install(rng, image.os, fonts)))
    device.set_timeline(changes)
    device.company = image.company
    device.office = nets.office(image.company, city)
    device.office_monitor = image.monitor
    device.office_share = rng.uniform(0.4, 0.8)
    device.tunnel_share = rng.uniform(0.3, 0.9)
    if rng.random() < 0.4:
        device.second_screen, device.second_share = pick(rng, MONITORS), 0.8
    device.carrier = rng.choice(city.carriers)
    device.private_rate = 0.02
    device.clear_on_exit = image.clear_on_exit
    device.clears = [_when(rng)] if rng.random() < 0.03 else []
    if rng.random() < 0.10:
        _trip(rng, device, (2, 5))
    return device


def _consumer_fonts(rng: random.Random, os: str) -> tuple[str, ...]:
    fonts = list(BASE_FONTS[os])
    for names, share in FONT_PACKS.values():
        if rng.random() < share.get(os, 0.0):
            fonts += names
    fonts += rng.sample(SINGLE_FONTS, pick(rng, ((0, 0.7), (1, 0.2), (2, 0.1))))
    return tuple(dict.fromkeys(fonts))


def _consumer(index: int, rng: random.Random) -> Device:
    os = pick(rng, (("Windows", 0.55), ("macOS", 0.25), ("Linux", 0.05), ("Android", 0.15)))
    city: City = pick(rng, zip(CITIES, CITY_WEIGHTS, strict=True))
    lang = "en-US" if rng.random() < 0.12 else city.lang
    disk = pick(rng, DISKS)
    if os == "Android":
        phone = pick(rng, OTHER_ANDROIDS)
        browser = "Brave" if rng.random() < 0.05 else "Chrome"
        state = State(pick(rng, ((1, 0.85), (0, 0.15))), 0, -1, BASE_FONTS[os], phone.screen, "")
        device = Device(index, "consumer", os, browser, phone.gpu, phone.cores, phone.memory,
                        128, city, lang, state, mobile=True, laptop=False, model=phone.model,
                        android=phone.android)  # fmt: skip
        changes = _updates(rng, "browser", cal.BROWSERS[browser], state.browser, "android")
    else:
        if os == "macOS":
            mac = pick(rng, MACS)
            gpu, cores, laptop, screen = Gpu("Apple", mac.gpu), mac.cores, mac.laptop, mac.screen
            browser = pick(rng, (("Safari", 0.45), ("Chrome", 0.4), ("Firefox", 0.09),
                                 ("Brave", 0.06)))  # fmt: skip
            memory, driver = pick(rng, ((8, 0.4), (16, 0.45), (24, 0.15))), -1
        else:
            gpu = pick(rng, WINDOWS_GPUS if os == "Windows" else LINUX_GPUS)
            cores, memory = pick(rng, PC_CORES), pick(rng, PC_MEMORY)
            laptop = rng.random() < 0.6
            screen = pick(rng, LAPTOP_PANELS if laptop else MONITORS)
            browsers = (
                (("Chrome", 0.62), ("Edge", 0.2), ("Firefox", 0.13), ("Brave", 0.05))
                if os == "Windows"
                else (("Firefox", 0.5), ("Chrome", 0.4), ("Brave", 0.1))
            )
            browser = pick(rng, browsers)
            driver = pick(rng, enumerate(DRIVER_AGE_WEIGHTS))
        start = pick(rng, ((1, 0.85), (0, 0.15))) if browser != "Safari" else 0
        os_start = {"macOS": pick(rng, ((1, 0.6), (0, 0.4)))}.get(os, 0)
        fonts = _consumer_fonts(rng, os)
        state = State(start, os_start, driver, fonts, screen, "")
        device = Device(index, "consumer", os, browser, gpu, cores, memory, disk, city, lang,
                        state, laptop=laptop)  # fmt: skip
        changes = []
        if browser != "Safari":
            changes += _updates(rng, "browser", cal.BROWSERS[browser], start, "desktop")
        if os == "macOS":
            changes += _updates(rng, "os", cal.MACOS, os_start, "macos")
        elif os == "Windows":
            changes += _updates(rng, "os", cal.WINDOWS, 0, "windows")
        if driver >= 0:
            share = 0.4 if os == "Linux" else 0.35 if gpu.vendor == "NVIDIA" else 0.15
            if rng.random() < share:
                when = cal.DRIVER_RELEASE_US + int(rng.expovariate(1 / 7) * DAY)
                changes.append((when, "driver", len(DRIVERS[(os, gpu.vendor)]) - 1))
        if rng.random() < 0.06:
            changes.append((_when(rng), "fonts", _font_install(rng, os, fonts)))
        if not laptop and rng.random() < 0.03:
            changes.append((_when(rng), "screen", pick(rng, MONITORS)))
        if not laptop and rng.random() < 0.2:
            device.second_screen, device.second_share = pick(rng, MONITORS), 0.35
        elif laptop and rng.random() < 0.3:
            device.second_screen, device.second_share = pick(rng, MONITORS), 0.6
        device.clear_on_exit = browser != "Safari" and rng.random() < 0.04
    device.set_timeline(changes)
    device.carrier = rng.choice(city.carriers)
    device.private_rate = 0.07
    device.clears = [_when(rng)] if rng.random() < 0.12 else []
    if (device.laptop or device.mobile) and rng.random() < 0.08:
        _trip(rng, device, (2, 10))
    return device


def _households(devices: list[Device], rng: random.Random) -> None:
    """Group each city's devices into households of 1-4 on one line."""
    for city in CITIES:
        members = [d for d in devices if d.city.name == city.name]
        rng.shuffle(members)
        number = 0
        while members:
            size = pick(rng, ((1, 0.35), (2, 0.3), (3, 0.2), (4, 0.15)))
            isp = rng.choice(city.isps)
            home = Household(f"{city.name}/{number}", city, isp, rng.random() < isp.v6_share)
            for device in members[:size]:
                device.household = home
            members, number = members[size:], number + 1


def _schedule(device: Device, visits: int, rng: random.Random) -> list[int]:
    span = pick(rng, ((60.0, 0.4), (rng.uniform(14, 40), 0.35), (rng.uniform(3, 14), 0.25)))
    begin = rng.uniform(0, 60 - span)
    out = []
    for day_f in sorted(rng.uniform(begin, begin + span) for _ in range(visits)):
        day = int(day_f)
        if device.population == "corporate":
            weekday = (cal.START.weekday() + day) % 7
            day += {5: 2, 6: 1}.get(weekday, 0) if day < 57 else -{5: 1, 6: 2}.get(weekday, 0)
            hour = rng.uniform(8, 18)
        else:
            hour = rng.triangular(7, 24, 20)
        local = cal.START_US + day * DAY + int(hour * cal.HOUR_US)
        out.append(local + tz_offset(device.city.zone, day) * 60_000_000)
    out = sorted(min(max(t, cal.START_US), cal.END_US - 1) for t in out)
    for k in range(1, len(out)):  # distinct instants, in order
        out[k] = max(out[k], out[k - 1] + 1)
    return out


def build_fleet(size: int, visits: int, seed: int) -> Fleet:
    rng = random.Random(f"{seed}/fleet")
    nets = Networks(seed)
    phones, corporate = round(size * 0.35), round(size * 0.20)
    devices: list[Device] = []
    for index in range(size):
        own = random.Random(f"{seed}/device/{index}")
        if index < phones:
            devices.append(_phone(index, own))
        elif index < phones + corporate:
            devices.append(_corporate(index, own, nets, seed))
        else:
            devices.append(_consumer(index, own))
    _households(devices, rng)
    for device in devices:
        if device.population == "consumer" and rng.random() < 0.05:
            device.vpn_exit = rng.choice(nets.vpn_exits)
        device.visits = _schedule(device, visits, random.Random(f"{seed}/visits/{device.index}"))
    schedule = sorted((t, d.index, k) for d in devices for k, t in enumerate(d.visits))
    return Fleet(devices, nets, schedule)
