"""Who is on the other end of a request: the client's address behind the trusted proxies,
and network allow-lists (CIDR lists in settings).

Rule: the client IP is REMOTE_ADDR unless that peer is a trusted proxy
(FLOWPAY_TRUSTED_PROXIES); then it is the right-most address of X-Forwarded-For that is not
a trusted proxy. Each proxy appends the address it received the request from, so the
right-hand end of the header is written by proxies we trust and everything left of the
first untrusted address is whatever the client chose to send: it is never read. With an
untrusted peer the header is ignored altogether. Every place that records where a request
came from (the audit log's origin, the actors of the API and the admin, the card-data
refusals) uses client_ip().
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=64)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks of a CIDR list (a bare address is a /32 or /128). Raises ValueError for
    an entry that is not one (core.checks reports it at start-up)."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def parse_address(value: str | None) -> Address | None:
    """An IP address, or None for anything else (IPv4-mapped IPv6 is read as IPv4)."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hop_address(value: str) -> Address | None:
    """An X-Forwarded-For entry: an address, possibly with a port (1.2.3.4:5678, [::1]:80)."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":")[0]
    return parse_address(value)


def address_in(address: Address | str | None, cidrs) -> bool:
    """Whether the address is in one of the networks of the CIDR list `cidrs`."""
    if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = parse_address(address)
    return address is not None and any(address in network for network in parse_networks(tuple(cidrs)))


def client_ip(request) -> str | None:
    """The address of the client that made this request (see the module docstring)."""
    peer = parse_address(request.META.get("REMOTE_ADDR"))
    if peer is None:
        return None
    trusted = settings.FLOWPAY_TRUSTED_PROXIES
    if not trusted or not address_in(peer, trusted):
        return str(peer)
    client = peer
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _hop_address(hop)
        if address is None:
            break  # a malformed entry: nothing left of it can be trusted; keep the last proxy
        client = address
        if not address_in(address, trusted):
            break
    return str(client)
