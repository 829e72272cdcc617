"""Places and the addresses devices connect from.

Every device lives in one of eight cities (time zone, language, home ISPs, mobile carriers).
Address shapes:
- households of 1-4 fleet devices share one IPv4 address that changes with the ISP's lease
  (Deutsche Telekom every day, cable ISPs every one to three months); on dual-stack ISPs a
  share of households reach the site over IPv6 with a privacy address per device and day;
- carrier-grade NAT: every phone of one carrier in one city leaves through a pool of 6 public
  addresses, a new one per visit, so many unrelated phones share few addresses;
- office NAT: one address per office, shared by every corporate laptop there;
- secure web gateways: corporate laptops working from home through the company tunnel leave
  through 3 addresses per region, shared by every company of that region;
- consumer VPN exits: 16 addresses shared by every VPN user of the fleet;
- hotels (4 per city) and cafés (8 per city): public Wi-Fi shared by whoever is there.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from .calendar import DAY_US, START_US

CARRIER_POOL = 6
HOTELS = 4  # per city
CAFES = 8  # per city
GATEWAYS_PER_REGION = 3
VPN_EXITS = 16


class Isp(NamedTuple):
    name: str
    v4: str  # first two octets of its customer range
    lease_days: int  # how long a household keeps its IPv4 address
    v6_share: float  # households reaching the site over IPv6
    v6: str  # first two groups of its IPv6 prefix


class City(NamedTuple):
    name: str
    zone: str
    lang: str
    region: str
    isps: tuple[Isp, ...]
    carriers: tuple[str, ...]  # first two octets of each mobile carrier's NAT range
    business: str  # offices, hotels, cafés


CITIES = (
    City("Berlin", "Europe/Berlin", "de-DE", "eu",
         (Isp("Telekom", "79.200", 1, 0.65, "2003:e2"),
          Isp("Vodafone", "5.146", 45, 0.5, "2a02:8109"), Isp("O2", "77.183", 7, 0.3, "2a02:3100")),
         ("80.187", "109.40", "176.0"), "91.64"),
    City("London", "Europe/London", "en-GB", "eu",
         (Isp("BT", "86.150", 30, 0.5, "2a00:23c7"), Isp("Virgin", "82.30", 60, 0.0, ""),
          Isp("Sky", "2.100", 90, 0.6, "2a02:c7c")),
         ("31.94", "148.252", "92.40"), "94.0"),
    City("Paris", "Europe/Paris", "fr-FR", "eu",
         (Isp("Orange", "90.60", 14, 0.7, "2a01:cb00"), Isp("Free", "88.170", 90, 0.8, "2a01:e0a"),
          Isp("SFR", "109.10", 30, 0.4, "2a02:8428")),
         ("92.184", "37.165", "176.130"), "78.120"),
    City("Madrid", "Europe/Madrid", "es-ES", "eu",
         (Isp("Movistar", "83.40", 30, 0.2, "2a0c:5a80"), Isp("Orange ES", "90.165", 30, 0.0, ""),
          Isp("Digi", "95.120", 30, 0.0, "")),
         ("88.10", "80.58", "88.20"), "83.50"),
    City("New York", "America/New_York", "en-US", "us",
         (Isp("Fios", "72.76", 90, 0.5, "2600:4040"),
          Isp("Spectrum", "67.245", 90, 0.6, "2603:7000"), Isp("Optimum", "24.186", 90, 0.0, "")),
         ("172.56", "174.200", "107.77"), "162.200"),
    City("Chicago", "America/Chicago", "en-US", "us",
         (Isp("Comcast", "73.40", 120, 0.7, "2601:240"), Isp("AT&T", "99.40", 60, 0.6, "2600:1700"),
          Isp("RCN", "98.200", 60, 0.0, "")),
         ("172.58", "174.205", "107.78"), "71.200"),
    City("São Paulo", "America/Sao_Paulo", "pt-BR", "us",
         (Isp("Vivo", "177.10", 7, 0.4, "2804:14c"), Isp("Claro", "189.40", 7, 0.5, "2804:d4b"),
          Isp("TIM", "191.10", 7, 0.0, "")),
         ("179.100", "201.50", "187.20"), "177.20"),
    City("Tokyo", "Asia/Tokyo", "ja-JP", "ap",
         (Isp("NTT", "153.200", 90, 0.6, "2400:4050"), Isp("KDDI", "114.160", 90, 0.5, "2001:268"),
          Isp("SoftBank", "126.10", 90, 0.5, "240b:10")),
         ("1.66", "106.130", "126.200"), "60.100"),
)  # fmt: skip
CITY_WEIGHTS = (0.18, 0.15, 0.1, 0.08, 0.18, 0.1, 0.09, 0.12)
GATEWAY_PREFIX = {"eu": "165.225", "us": "136.226", "ap": "165.225"}
VPN_PREFIXES = ("146.70", "185.65", "89.187", "193.19")


def v4(prefix: str, rng: random.Random) -> str:
    return f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


class Household(NamedTuple):
    key: str
    city: City
    isp: Isp
    v6: bool


class Networks:
    """Every shared address of one run, drawn from the seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = random.Random(f"{seed}/networks")
        self.carrier_pools = {
            (city.name, carrier): [v4(carrier, rng) for _ in range(CARRIER_POOL)]
            for city in CITIES
            for carrier in city.carriers
        }
        self.hotels = {c.name: [v4(c.business, rng) for _ in range(HOTELS)] for c in CITIES}
        self.cafes = {c.name: [v4(c.business, rng) for _ in range(CAFES)] for c in CITIES}
        self.gateways = {
            region: [v4(prefix, rng) for _ in range(GATEWAYS_PER_REGION)]
            for region, prefix in GATEWAY_PREFIX.items()
        }
        self.vpn_exits = [v4(rng.choice(VPN_PREFIXES), rng) for _ in range(VPN_EXITS)]
        self._offices: dict[tuple[str, str], str] = {}
        self._office_rng = random.Random(f"{seed}/offices")

    def office(self, company: str, city: City) -> str:
        key = (company, city.name)
        if key not in self._offices:
            self._offices[key] = v4(city.business, self._office_rng)
        return self._offices[key]

    def home(self, household: Household, device: int, t_us: int) -> str:
        """The address a device at home reaches the site from at `t_us`."""
        day = (t_us - START_US) // DAY_US
        epoch = day // household.isp.lease_days
        if household.v6:
            # A prefix per household and lease, a temporary interface id per device and day.
            rng = random.Random(f"{self.seed}/v6/{household.key}/{epoch}")
            prefix = f"{household.isp.v6}:{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}"
            iid = random.Random(f"{self.seed}/iid/{device}/{day}").getrandbits(64)
            groups = ":".join(f"{(iid >> s) & 0xFFFF:x}" for s in (48, 32, 16, 0))
            return f"{prefix}:{groups}"
        return v4(household.isp.v4, random.Random(f"{self.seed}/v4/{household.key}/{epoch}"))

    def carrier(self, city: City, carrier: str, rng: random.Random) -> str:
        return rng.choice(self.carrier_pools[(city.name, carrier)])
