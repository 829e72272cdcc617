"""IP intelligence from offline MaxMind-format databases, plus datacenter, Tor and blocklists.

City and ASN databases are read with `maxminddb` (GeoLite2 and DB-IP Lite files both work). With
no path configured, the GeoLite2 City database shipped by the `maxminddb-geolite2` package is
used: it works with no download but dates from 2018, so its answers for recently moved ranges are
wrong; configure a current file for production.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from pathlib import Path

import maxminddb
import msgspec

log = logging.getLogger("signalpost.ipintel")

# Autonomous systems of hosting and VPN providers: traffic from them is rarely a person at home.
DATACENTER_ASNS = frozenset(
    {
        16509,
        14618,
        8987,  # Amazon
        15169,
        396982,
        19527,  # Google
        8075,
        8068,  # Microsoft
        14061,  # DigitalOcean
        16276,  # OVH
        24940,  # Hetzner
        63949,  # Akamai Linode
        20473,  # Vultr (Choopa)
        13335,  # Cloudflare
        9009,  # M247
        60068,  # Datacamp (CDN77)
        212238,  # Datacamp
        62240,  # Clouvider
        51167,  # Contabo
        12876,  # Scaleway
        45102,  # Alibaba
        132203,  # Tencent
        31898,  # Oracle
        36352,  # ColoCrossing
        53667,  # FranTech
        174,  # Cogent (transit often used by VPNs)
    }
)
VPN_PROVIDER_BY_ASN = {9009: "M247", 60068: "Datacamp", 212238: "Datacamp", 62240: "Clouvider"}


class IpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    city_db: str | None = None
    asn_db: str | None = None
    tor_exit_list: str | None = None
    blocklist: str | None = None
    extra_datacenter_asns: list[int] = []


class IpInfo(msgspec.Struct):
    address: str
    city: str | None = None
    country: str | None = None
    lat: float | None = None
    lng: float | None = None
    asn: int | None = None
    asnOrg: str | None = None
    datacenter: bool = False
    tor: bool = False
    blocklisted: bool = False


def _read_list(path: str | None) -> frozenset[str]:
    if not path:
        return frozenset()
    entries = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("ExitAddress "):  # the Tor project's exit-addresses format
            line = line.split()[1]
        if line:
            entries.add(line)
    return frozenset(entries)


def _default_city_db() -> str | None:
    try:
        from geolite2 import geolite2  # the maxminddb-geolite2 package

        return geolite2.filename  # type: ignore[attr-defined]
    except Exception:
        pass
    try:
        import _maxminddb_geolite2  # type: ignore[import-not-found]

        path = Path(_maxminddb_geolite2.__file__).parent / "GeoLite2-City.mmdb"
        return str(path) if path.exists() else None
    except ImportError:
        return None


class IpIntelligence:
    def __init__(self, config: IpConfig | None = None) -> None:
        config = config or IpConfig()
        city_path = config.city_db or _default_city_db()
        self.city = maxminddb.open_database(city_path) if city_path else None
        self.asn = maxminddb.open_database(config.asn_db) if config.asn_db else None
        self.tor_exits = _read_list(config.tor_exit_list)
        self.blocked = _read_list(config.blocklist)
        self.blocked_networks = [
            ipaddress.ip_network(e, strict=False) for e in self.blocked if "/" in e
        ]
        self.datacenter_asns = DATACENTER_ASNS | frozenset(config.extra_datacenter_asns)
        self.lookup = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, address: str) -> IpInfo:
        info = IpInfo(address=address)
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return info
        if self.city is not None and ip.is_global:
            rec = self.city.get(address)
            if isinstance(rec, dict):
                info.city = (rec.get("city") or {}).get("names", {}).get("en")
                info.country = (rec.get("country") or rec.get("registered_country") or {}).get(
                    "iso_code"
                )
                loc = rec.get("location") or {}
                info.lat, info.lng = loc.get("latitude"), loc.get("longitude")
        if self.asn is not None and ip.is_global:
            rec = self.asn.get(address)
            if isinstance(rec, dict):
                # AS 0 is reserved ("no AS"): the document says none, as columns store it.
                info.asn = rec.get("autonomous_system_number") or None
                info.asnOrg = rec.get("autonomous_system_organization")
        info.datacenter = info.asn in self.datacenter_asns
        info.tor = address in self.tor_exits
        info.blocklisted = address in self.blocked or any(
            ip in net for net in self.blocked_networks
        )
        return info

    def vpn_provider(self, info: IpInfo) -> str | None:
        return VPN_PROVIDER_BY_ASN.get(info.asn or -1) or (info.asnOrg if info.datacenter else None)
