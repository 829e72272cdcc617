"""The client address: the socket peer, unless the peer is a trusted proxy."""

from __future__ import annotations

from api.device import client_address

TRUSTED = ("10.0.0.0/8", "192.168.1.1/32")


def test_untrusted_peer_is_the_client_and_forwarding_headers_are_a_proxy_signal():
    assert client_address("203.0.113.9", {}, TRUSTED) == ("203.0.113.9", False)
    forged = {"x-forwarded-for": "8.8.8.8"}
    assert client_address("203.0.113.9", forged, TRUSTED) == ("203.0.113.9", True)
    assert client_address("203.0.113.9", {"via": "1.1 proxy"}, ()) == ("203.0.113.9", True)


def test_trusted_proxy_hands_over_the_right_most_untrusted_hop():
    chain = {"x-forwarded-for": "1.2.3.4, 5.6.7.8, 10.1.1.1"}
    assert client_address("10.0.0.5", chain, TRUSTED) == ("5.6.7.8", False)
    only_proxies = {"x-forwarded-for": "10.2.2.2, 192.168.1.1"}
    assert client_address("192.168.1.1", only_proxies, TRUSTED) == ("192.168.1.1", False)
    assert client_address("10.0.0.5", {}, TRUSTED) == ("10.0.0.5", False)


def test_garbage_peer_is_never_trusted():
    assert client_address("not-an-ip", {"x-forwarded-for": "1.1.1.1"}, TRUSTED) == (
        "not-an-ip",
        True,
    )
