"""The client's address behind trusted proxies, and what a per-address limit counts by."""

from __future__ import annotations

import pytest

from assistant_service.entrypoints.http.client_address import (
    MAX_HOPS,
    client_address,
    client_identity,
    parse_networks,
)

TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.1, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # A peer that is not ours: its header is whatever it wants it to be.
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        ("203.0.113.5", [], "203.0.113.5"),
        # One proxy of ours: the hop it appended.
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # Two proxies of ours, and a made-up address the client sent first.
        ("10.0.0.2", ["192.0.2.99, 198.51.100.7, 192.168.1.1"], "198.51.100.7"),
        # Several header lines are one list, in order.
        ("10.0.0.2", ["192.0.2.99", "198.51.100.7"], "198.51.100.7"),
        # Every hop ours: the left-most is the client.
        ("10.0.0.2", ["10.1.1.1, 10.2.2.2"], "10.1.1.1"),
        # A hop that is not an address ends the walk at the last good one.
        ("10.0.0.2", ["198.51.100.7, garbage"], "10.0.0.2"),
        ("10.0.0.2", ["garbage, 10.3.3.3"], "10.3.3.3"),
        # IPv6, and IPv4 written as IPv6 by a dual-stack socket.
        ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
        ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # No peer (a Unix socket): nothing to trust.
        (None, ["198.51.100.7"], "unknown"),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(peer, forwarded_for, client):
    assert client_address(peer, forwarded_for, TRUSTED) == client


def test_with_no_trusted_proxy_the_header_is_never_read():
    assert client_address("10.0.0.2", ["198.51.100.7"], ()) == "10.0.0.2"


def test_a_long_header_is_read_from_its_right_end_only():
    stuffed = ", ".join(f"192.0.2.{i % 250}" for i in range(10_000))
    assert client_address("10.0.0.2", [f"{stuffed}, 198.51.100.7"], TRUSTED) == "198.51.100.7"
    hops = ", ".join(["10.9.9.9"] * (MAX_HOPS + 5))
    assert client_address("10.0.0.2", [f"198.51.100.7, {hops}"], TRUSTED) == "10.9.9.9"


def test_an_ipv6_client_counts_by_its_slash_64():
    assert client_identity("2001:db8:1:2:aaaa::1") == client_identity("2001:db8:1:2:bbbb::2")
    assert client_identity("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_identity("2001:db8:1:3::1") != client_identity("2001:db8:1:2::1")
    assert client_identity("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_identity("198.51.100.7") == "198.51.100.7"
    assert client_identity("unknown") == "unknown"


def test_trusted_proxies_parse_addresses_and_blocks_and_name_a_bad_entry():
    assert [str(n) for n in parse_networks(" 10.0.0.0/8 ,::1,, 192.168.1.7/24")] == [
        "10.0.0.0/8",
        "::1/128",
        "192.168.1.0/24",
    ]
    with pytest.raises(ValueError, match="'proxy.internal'"):
        parse_networks("10.0.0.1, proxy.internal")
