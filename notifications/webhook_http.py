"""Where a webhook may point, and the one POST that reaches it (the guard against SSRF).

A webhook URL is chosen by an organization's coordinator or manager, so without a guard the
server would POST wherever they say: its own loopback (Redis on 127.0.0.1:6379), the internal
network, the cloud's metadata service. The rules:

- https only while `WEBHOOK_REQUIRE_HTTPS` (default: on unless DJANGO_DEBUG); no user name or
  password in the URL (the signature authenticates us);
- every address the host name resolves to must be a public one: not loopback, private,
  link-local, shared (100.64/10), multicast, reserved or unspecified, also when embedded in an
  IPv6 address (IPv4-mapped, 6to4, NAT64). `WEBHOOK_ALLOW_PRIVATE_TARGETS` lifts that for
  development and tests, never for cloud metadata addresses and names.

`target_validate` checks a URL when it is saved (a name that does not resolve yet is accepted:
the send decides). `post` checks it again at every send: it resolves the name ONCE, refuses if
any address is not allowed, and connects to the address it checked, never resolving again (a
second lookup could answer differently: DNS rebinding). The Host header, the TLS server name
(SNI) and the certificate check stay on the URL's host name: httpcore passes the request
extension `sni_hostname` as `server_hostname` to `SSLContext.wrap_socket`, which both sends it
and verifies the certificate against it (httpcore/_sync/connection.py, `_connect`).

What a send reports is only the HTTP status code, or one message for every network failure: the
delivery log is readable by the organization's members and must not tell an open port from a
closed or filtered one, nor echo a response.
"""

import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TARGET_INVALID = _("Enter a valid URL, e.g. https://example.org/hooks/tracker.")
TARGET_NOT_HTTPS = _("A webhook URL must use https.")
TARGET_CREDENTIALS = _(
    "Do not put a user name or password in the URL; the signature authenticates us."
)
TARGET_NOT_PUBLIC = _(
    "This address is not allowed: webhooks go only to public internet addresses (not "
    "loopback, private, link-local, multicast, reserved or cloud metadata addresses)."
)
# Recorded on the delivery when a send refuses the target (the URL was saved under older
# rules, or its name now resolves elsewhere).
TARGET_REFUSED = _(
    "Not sent: the URL is not allowed (https to public addresses only, no credentials); change it."
)
# One message for every network failure (name, connection, TLS, timeout): the log must not
# tell an open port from a closed one.
DELIVERY_FAILED = "Could not deliver (connection failed or timed out)."
HTTP_STATUS = "HTTP {code}"

# Cloud instance metadata: refused even with WEBHOOK_ALLOW_PRIVATE_TARGETS.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
# Not globally reachable, but not flagged by `ipaddress` on every Python we run on.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "64:ff9b:1::/48",  # local-use NAT64
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Result:
    """What one POST came to: the status code (None when nothing answered) and the text the
    delivery log shows."""

    status_code: int | None
    error: str


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _not_public(address: IPAddress) -> bool:
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (address.version == 6 and address.is_site_local)
        or any(address in network for network in NOT_GLOBAL if network.version == address.version)
        or not address.is_global
    )


def address_allowed(address: IPAddress) -> bool:
    """May a webhook connect to `address`?"""
    if address.version == 6 and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    embedded = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES or embedded in METADATA_ADDRESSES:
        return False
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return True
    # An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) goes where that one goes.
    return not _not_public(address if embedded is None else embedded)


def _parse(url: str) -> httpx.URL:
    """The URL if its form is allowed (scheme, no credentials, no forbidden name)."""
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise TargetRefused(TARGET_INVALID) from None
    schemes = ("https",) if settings.WEBHOOK_REQUIRE_HTTPS else ("https", "http")
    if target.scheme not in schemes:
        raise TargetRefused(TARGET_NOT_HTTPS)
    if target.userinfo:
        raise TargetRefused(TARGET_CREDENTIALS)
    name = target.raw_host.decode("ascii").lower().rstrip(".")
    if not name:
        raise TargetRefused(TARGET_INVALID)
    if name in METADATA_HOSTS:
        raise TargetRefused(TARGET_NOT_PUBLIC)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS and (
        name == "localhost" or name.endswith(".localhost")
    ):
        raise TargetRefused(TARGET_NOT_PUBLIC)
    return target


def _resolve(target: httpx.URL) -> list[IPAddress]:
    """Every address the host resolves to (one lookup), refused if any is not allowed.
    Raises OSError (socket.gaierror) when the name does not resolve."""
    port = target.port or (443 if target.scheme == "https" else 80)
    infos = socket.getaddrinfo(target.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses or not all(address_allowed(address) for address in addresses):
        raise TargetRefused(TARGET_NOT_PUBLIC)
    return addresses


def target_validate(url: str) -> None:
    """Raise ValidationError (the message only; the caller names the field) when `url` may
    not be a webhook target. A name that does not resolve now is accepted: each send checks
    again."""
    try:
        target = _parse(url)
        with contextlib.suppress(OSError, UnicodeError):  # does not resolve (yet)
            _resolve(target)
    except TargetRefused as exc:
        raise ValidationError(exc.message, code="target_refused") from None


def post(url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> Result:
    """POST `content` to `url` if it is an allowed target, at the address checked; redirects
    are not followed (a 3xx is a failed attempt) and the answer's body is never read."""
    # The server's log (not the organization's delivery log) says what went wrong; it names
    # the host only (a URL's path or query may hold the receiver's own token).
    try:
        target = _parse(url)
        host = target.raw_host.decode("ascii")
        addresses = _resolve(target)
    except TargetRefused as exc:
        logger.warning("Webhook target refused: %s", exc.message)
        return Result(None, TARGET_REFUSED)
    except (OSError, UnicodeError) as exc:
        logger.info("Webhook host %s does not resolve: %r", host, exc)
        return Result(None, DELIVERY_FAILED)
    headers = {**headers, "host": target.netloc.decode("ascii")}
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        # Each address the name gave, in order, until one accepts the connection (IPv6 first on
        # a host without IPv6 routes, say); never an address that was not checked.
        for address in addresses:
            try:
                request = client.build_request(
                    "POST",
                    target.copy_with(host=str(address)),
                    content=content,
                    headers=headers,
                    extensions={"sni_hostname": host},
                )
                # Streamed and closed unread: a receiver's body is not ours to download.
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                logger.info("Webhook POST to %s at %s failed: %r", host, address, exc)
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                logger.info("Webhook POST to %s at %s failed: %r", host, address, exc)
                return Result(None, DELIVERY_FAILED)
            response.close()
            code = response.status_code
            return Result(code, "" if 200 <= code < 300 else HTTP_STATUS.format(code=code))
    return Result(None, DELIVERY_FAILED)
