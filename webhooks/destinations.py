"""Where merchant webhooks may be sent, and sending there without a second DNS look-up.

Rules:
- Only http(s) URLs with a host and a valid port, no credentials; https in production.
- Every address the host resolves to must be global (`ipaddress.is_global`), after unwrapping
  addresses that carry another one: IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16) and Teredo
  (2001::/32). That refuses loopback, private, link-local, CGNAT (100.64.0.0/10, where some
  clouds serve instance metadata), reserved and multicast ranges, and their IPv6 disguises.
- The check runs when an endpoint is created and again at each delivery (a DNS answer may
  have changed since), and the delivery connects to the very address that was checked
  (DNS rebinding: the HTTP client never resolves the name again). TLS still verifies the
  certificate against the host name.
- FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS (development and tests only) lifts the address and https
  rules, not the pinning.
- Connections are kept alive and reused per (scheme, host, port, checked address): a pool is
  bound to one checked address, so reuse never skips the check. At most POOLS_KEPT pools per
  process stay open; the least recently used one is closed first.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    address: str  # the checked address the delivery connects to

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def embedded_addresses(ip: IPAddress) -> list[IPAddress]:
    """The address itself and every IPv4 address it carries (IPv4-mapped, 6to4, Teredo)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.extend(ip.teredo)
    return found


def address_is_public(ip: IPAddress) -> bool:
    return all(candidate.is_global and not candidate.is_multicast for candidate in embedded_addresses(ip))


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DestinationRefused("the URL has an invalid port or host") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefused("the URL must be http(s)://host/…")
    if parts.username or parts.password:
        raise DestinationRefused("the URL must not carry credentials")
    if port == 0:
        raise DestinationRefused("the URL has an invalid port or host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), target


def destination_resolve(url: str) -> Destination:
    """The checked destination of `url`, or DestinationRefused saying why not."""
    scheme, host, port, target = _parse(url)
    allow_private = settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS
    if scheme != "https" and not allow_private:
        raise DestinationRefused("the URL must use https")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DestinationRefused(f"the host {host[:100]!r} does not resolve") from None
    addresses = [info[4][0].split("%")[0] for info in infos]
    if not addresses:
        raise DestinationRefused(f"the host {host[:100]!r} does not resolve")
    if not allow_private and not all(address_is_public(ipaddress.ip_address(a)) for a in addresses):
        raise DestinationRefused("the URL resolves to a private or reserved address")
    return Destination(scheme=scheme, host=host, port=port, target=target, address=addresses[0])


def destination_refusal(url: str) -> str | None:
    """Why a URL may not receive webhooks, or None. With private URLs allowed (development,
    tests) the host need not resolve yet; each delivery resolves and checks it anyway."""
    try:
        if settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS:
            _parse(url)
        else:
            destination_resolve(url)
    except DestinationRefused as refused:
        return str(refused)
    return None


POOLS_KEPT = 64
CONNECTIONS_PER_POOL = 4

_pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()


def _new_pool(destination: Destination) -> urllib3.HTTPConnectionPool:
    common = {"retries": False, "maxsize": CONNECTIONS_PER_POOL, "block": False}
    if destination.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            destination.address, destination.port, **common,
            server_hostname=destination.host, assert_hostname=destination.host,
            cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
        )
    return urllib3.HTTPConnectionPool(destination.address, destination.port, **common)


def destination_pool(destination: Destination) -> urllib3.HTTPConnectionPool:
    """The kept-alive pool for this checked destination (created on first use)."""
    key = (destination.scheme, destination.host, destination.port, destination.address)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None:
            _pools.move_to_end(key)
            return pool
        pool = _pools[key] = _new_pool(destination)
        evicted = _pools.popitem(last=False)[1] if len(_pools) > POOLS_KEPT else None
    if evicted is not None:
        evicted.close()
    return pool


def destination_pools_close() -> None:
    """Close every kept connection."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _forget_pools_after_fork() -> None:
    # A forked worker must not write to its parent's sockets; the parent still owns them.
    global _pools_lock
    _pools_lock = threading.Lock()
    _pools.clear()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def destination_post(
    destination: Destination, *, body: bytes, headers: dict[str, str], connect_timeout: float, read_timeout: float
) -> int:
    """POST to the checked address (never a fresh DNS answer); returns the HTTP status.
    Raises urllib3.exceptions.HTTPError (connection refused, timeout, TLS failure)."""
    response = destination_pool(destination).urlopen(
        "POST", destination.target, body=body, headers={**headers, "Host": destination.host_header},
        redirect=False, retries=False, preload_content=True,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
    )
    return response.status
