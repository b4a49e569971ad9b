"""Device fingerprint and client address (docs/identity.md, "Device fingerprint").

The fingerprint binds a refresh token to the browser or app that received it. It is the SHA-256 of
the User-Agent, the Accept-Language and, when the client sends one, its `X-Device-Id` header. The
IP address is deliberately left out: it changes with mobile networks and VPNs, so an IP change is
audited but not refused. The fingerprint is not a secret and not proof of anything on its own; it
makes a stolen refresh token harder to use from a different client.

The client address is the socket peer, unless that peer is one of the configured trusted proxies
(settings.http.trusted_proxies, addresses or CIDR networks): then X-Forwarded-For is read from the
right, skipping trusted proxies, and the first untrusted address is the client. Anything to its
left was written by the client and is ignored.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

DEVICE_ID_HEADER = "X-Device-Id"
_MAX_PART = 512  # longer header values are cut before hashing; they are client-controlled

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def device_fingerprint(
    user_agent: str | None, accept_language: str | None, device_id: str | None = None
) -> str:
    parts = [
        "ua=" + (user_agent or "").strip()[:_MAX_PART],
        "lang=" + (accept_language or "").strip()[:_MAX_PART],
        "device=" + (device_id or "").strip()[:_MAX_PART],
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def parse_trusted_proxies(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Settings strings ("10.0.0.0/8", "127.0.0.1") as networks; a bad entry is a ValueError."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {entry!r} is not an IP address or network") from None
    return tuple(networks)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51000"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(peer: str, forwarded_for: str | None, trusted_proxies: Iterable[IPNetwork]) -> str:
    trusted = tuple(trusted_proxies)

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in trusted)

    peer_ip = _parse_ip(peer)
    if peer_ip is None or not forwarded_for or not is_trusted(peer_ip):
        return peer
    client = peer_ip
    for hop in reversed(forwarded_for.split(",")):
        address = _parse_ip(hop)
        if address is None:
            break  # a garbled hop: stop at the last address a trusted proxy vouched for
        client = address
        if not is_trusted(address):
            break
    return str(client)
