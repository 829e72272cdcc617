"""IP intelligence: the shipped default database, lists and datacenter networks."""

from __future__ import annotations

from engine.ipintel import IpConfig, IpIntelligence


def test_default_database_answers_offline():
    info = IpIntelligence().lookup("8.8.8.8")
    assert info.country == "US" and info.lat is not None


def test_private_and_garbage_addresses_have_no_location():
    ip = IpIntelligence()
    assert ip.lookup("127.0.0.1").country is None
    assert ip.lookup("10.1.2.3").country is None
    assert ip.lookup("not-an-ip").country is None


def test_tor_list_and_blocklist_files(tmp_path):
    tor = tmp_path / "exits.txt"
    tor.write_text("ExitNode ABC\nExitAddress 203.0.113.9 2026-11-01 10:00:00\n198.51.100.7\n")
    block = tmp_path / "block.txt"
    block.write_text("# comment\n192.0.2.0/24\n203.0.113.50\n")
    ip = IpIntelligence(IpConfig(tor_exit_list=str(tor), blocklist=str(block)))
    assert ip.lookup("203.0.113.9").tor and ip.lookup("198.51.100.7").tor
    assert not ip.lookup("203.0.113.10").tor
    assert ip.lookup("192.0.2.77").blocklisted and ip.lookup("203.0.113.50").blocklisted
    assert not ip.lookup("198.51.100.8").blocklisted


def _asn_database(path, networks: dict[str, tuple[int, str]]) -> str:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for cidr, (number, org) in networks.items():
        writer.insert_network(
            IPSet([cidr]),
            {"autonomous_system_number": number, "autonomous_system_organization": org},
        )
    writer.to_db_file(str(path))
    return str(path)


def test_asn_database_marks_datacenters_and_vpn_providers(tmp_path):
    db = _asn_database(
        tmp_path / "asn.mmdb",
        {"45.83.0.0/22": (9009, "M247 Europe SRL"), "80.1.0.0/16": (5089, "Virgin Media")},
    )
    ip = IpIntelligence(IpConfig(asn_db=db, extra_datacenter_asns=[64512]))
    vpn = ip.lookup("45.83.1.2")
    assert vpn.asn == 9009 and vpn.datacenter and ip.vpn_provider(vpn) == "M247"
    home = ip.lookup("80.1.2.3")
    assert home.asn == 5089 and not home.datacenter and ip.vpn_provider(home) is None
    assert ip.lookup("9.9.9.9").asn is None
