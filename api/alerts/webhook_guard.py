"""Where a webhook may point: the guard against server-side request forgery (SSRF).

A webhook makes the alerts service POST to an address a user chose. Without a guard, anyone
allowed to subscribe could make the server reach its own loopback services, the cloud metadata
endpoint (169.254.169.254) or machines on the hospital network. So a destination must

* use **https** — plain http only for a host an administrator lists in
  `OXY_WEBHOOK_ALLOWED_HOSTS` (comma-separated host names or addresses);
* resolve only to **public** addresses: loopback, link-local, private, shared (CGN), multicast,
  unspecified and reserved ranges are refused, IPv4 and IPv6, including IPv4 addresses carried in
  IPv6 (IPv4-mapped, NAT64, 6to4, Teredo). A listed host may also resolve to such addresses (an
  internal receiver the administrator vouches for).

The check runs when a subscription is created and again before every delivery; the delivery then
connects to the very address that was checked (DNS rebinding cannot swap it in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookRefused(ValueError):
    """The destination is not allowed; the message says why (English message id)."""


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A destination that passed the guard, with the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def allowed_hosts(setting: str | Iterable[str]) -> frozenset[str]:
    """The allow-list from its setting (comma-separated), normalised."""
    items = setting.split(",") if isinstance(setting, str) else setting
    return frozenset(h.strip().lower().strip("[]") for h in items if h.strip())


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4 inside IPv6 is judged as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def check_target(
    url: str, allowed: frozenset[str], resolve: Resolver = system_resolve
) -> CheckedTarget:
    """Validate `url` and pick the address to connect to; raises WebhookRefused."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise WebhookRefused("The webhook address is not a valid URL.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise WebhookRefused("The webhook address is not a valid URL.")
    if parts.username or parts.password:
        raise WebhookRefused("The webhook address must not contain a user name or password.")
    trusted = host in allowed
    if scheme == "http" and not trusted:
        raise WebhookRefused("The webhook address must use https.")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolve(host, port)
        except (OSError, UnicodeError):
            raise WebhookRefused("The webhook host name does not resolve.") from None
        if not addresses:
            raise WebhookRefused("The webhook host name does not resolve.")
    ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not trusted and not all(is_public(ip) for ip in ips):
        raise WebhookRefused(
            "The webhook address points to a private, loopback, link-local or reserved network."
        )
    return CheckedTarget(url.strip(), scheme, host, port, str(ips[0]))


def pinned_url(target: CheckedTarget) -> str:
    """The URL with its host replaced by the checked address (the Host header keeps the name)."""
    parts = urlsplit(target.url)
    ip = ipaddress.ip_address(target.address)
    netloc = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc += f":{target.port}"
    return parts._replace(netloc=netloc).geturl()
