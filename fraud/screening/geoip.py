"""The country of an IP address, from an offline table: never a network call.

The table is a CSV file read once per process (FLOWPAY_FRAUD_GEOIP_FILE, else the built-in
data/ip_countries.csv): lines `cidr,country` or `first address,last address,country`, the
shape of the free GeoIP CSV exports, '#' comments and blank lines ignored. Ranges are kept
sorted per IP version and looked up by bisection, so a table of millions of ranges answers
in microseconds. An address in no range (private, loopback, unknown) has no country.
"""

from __future__ import annotations

import bisect
import csv
import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

BUILT_IN = Path(__file__).resolve().parent / "data" / "ip_countries.csv"


@dataclass(frozen=True)
class _Table:
    starts: dict[int, list[int]]  # IP version -> first addresses, sorted
    ranges: dict[int, list[tuple[int, int, str]]]  # IP version -> (first, last, country), same order


def _ranges(path: Path):
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            cells = [cell.strip() for cell in row]
            try:
                if len(cells) == 2:
                    network = ipaddress.ip_network(cells[0], strict=False)
                    first, last = network.network_address, network.broadcast_address
                elif len(cells) >= 3:
                    first, last = ipaddress.ip_address(cells[0]), ipaddress.ip_address(cells[1])
                else:
                    raise ValueError("expected cidr,country or first,last,country")
            except ValueError as exc:
                raise ValueError(f"{path}:{line_number}: {exc}") from None
            country = cells[-1].upper()
            if len(country) != 2 or not country.isalpha() or first.version != last.version or first > last:
                raise ValueError(f"{path}:{line_number}: not a range and a two-letter country: {row!r}")
            yield first.version, int(first), int(last), country


@functools.lru_cache(maxsize=4)
def load_table(path: str) -> _Table:
    """The table of `path` (ValueError naming the line for a malformed one)."""
    ranges: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
    for version, first, last, country in _ranges(Path(path)):
        ranges[version].append((first, last, country))
    for rows in ranges.values():
        rows.sort()
    return _Table(starts={v: [r[0] for r in rows] for v, rows in ranges.items()}, ranges=ranges)


def table_path() -> str:
    return settings.FLOWPAY_FRAUD_GEOIP_FILE or str(BUILT_IN)


def ip_country(address: str | None) -> str | None:
    """The ISO country of `address`, or None (no address, not an address, in no range)."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    table = load_table(table_path())
    value = int(parsed)
    index = bisect.bisect_right(table.starts[parsed.version], value) - 1
    if index < 0:
        return None
    first, last, country = table.ranges[parsed.version][index]
    return country if first <= value <= last else None
