"""Who is calling, by address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

``X-Forwarded-For`` is written by whoever sent the request, so only the hops a
trusted proxy appended can be believed. The list is read from the right (the
hop nearest this server) and every trusted proxy is skipped; the first address
left is the client. A client that puts a made-up address at the left of the
header changes nothing: its real address was appended after it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# One identity per IPv6 /64: a single host is given a whole /64 and can pick any
# address in it, so counting per address would give it 2**64 identities.
IPV6_CLIENT_PREFIX = 64
# A header longer than this many hops is cut from the left: only the right end is read.
MAX_HOPS = 32
UNKNOWN = "unknown"


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses and CIDR blocks (``10.0.0.0/8, ::1``).

    Raises ``ValueError`` naming the first entry that is neither.
    """
    networks = []
    for entry in text.split(","):
        item = entry.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR block: {item!r}") from None
    return tuple(networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]
) -> str:
    """The client's address: ``peer``, or, when ``peer`` is a trusted proxy, the
    right-most address of ``X-Forwarded-For`` (every header line) that is not one.

    When every hop is trusted, the left-most is the client. An entry that is not
    an address ends the walk at the last good hop: it cannot be checked.
    """
    current = _address(peer)
    if current is None:
        return peer or UNKNOWN
    if not _is_trusted(current, trusted):
        return str(current)
    hops = [hop.strip() for line in forwarded_for for hop in line.split(",")][-MAX_HOPS:]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _is_trusted(address, trusted):
            break
    return str(current)


def client_identity(address: str) -> str:
    """What a per-address limit counts by: the address, or its /64 for IPv6."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        network = ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False)
        return str(network)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        # An IPv6 zone (fe80::1%eth0) names an interface, not a different client.
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _is_trusted(address: IPAddress, trusted: tuple[IPNetwork, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)
