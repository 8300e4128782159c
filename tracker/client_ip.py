"""The client address of a request: one rule for the login limits (django-axes), the API's
throttles and anything else that counts per address.

REMOTE_ADDR is the client unless it is one of the reverse proxies named in TRUSTED_PROXIES
(addresses or networks). Only then is X-Forwarded-For read, from the right: each proxy appends
the address it received the request from, so the first address from the right that is not a
trusted proxy is the client. Everything left of it was written by the client and is ignored.
With TRUSTED_PROXIES empty (the default) X-Forwarded-For is never read, so a client cannot
pick its own address. A list of proxies rather than a count: a request that reaches the app
directly, bypassing the proxy, is then not taken at its word.
"""

import functools
import ipaddress

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(entries) -> tuple[Network, ...]:
    """TRUSTED_PROXIES as networks; a bare address is a network of one. ValueError names a
    bad entry."""
    networks = []
    for entry in entries:
        entry = str(entry).strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network") from exc
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_trusted_proxies(entries)


def _address(text: str) -> Address | None:
    """An address as written in REMOTE_ADDR or X-Forwarded-For (a port some proxies append
    is dropped); None when it is not one."""
    text = text.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:192.0.2.1 is 192.0.2.1
    return mapped or address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(request) -> str | None:
    """The client's address, or None when the request has none (e.g. a test's bare request)."""
    meta = request.META
    remote = _address(meta.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    proxies = _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    client = remote
    if proxies and _is_trusted(remote, proxies):
        hops = (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # not an address: keep the last one a trusted proxy vouched for
            client = address
            if not _is_trusted(address, proxies):
                break
    return str(client)
