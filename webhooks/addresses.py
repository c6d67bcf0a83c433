"""Where an endpoint may point: no loopback, private, link-local or metadata addresses.

A webhook's URL is chosen by whoever configures it, and the product sends requests
to it from inside the network: refused are addresses that are not globally routable
(loopback, private, link-local, which holds the cloud metadata service at
169.254.169.254, shared, reserved, multicast), unless ``WEBHOOKS_ALLOW_LOOPBACK``
lets loopback through (tests, the demo). The check runs when an endpoint is saved
and again before each send, on the addresses the name resolves to then, and the
request goes to the address that was checked (a name that re-resolves elsewhere
between the check and the connection changes nothing).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from leadrecord.errors import InvalidInput

# Named even though not globally routable already: clouds' metadata services.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text) for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name, for the Host header and TLS
    port: int
    address: str  # the checked IP address to connect to
    path: str  # path and query


def _address_refusal(text: str) -> str | None:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if settings.WEBHOOKS_ALLOW_LOOPBACK else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_multicast:
        return "an address that is not publicly routable"
    return None


def url_target(url: str) -> Target:
    """Resolve ``url`` and check every address it names; the target to send to."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 -- parsing it is the check
    except ValueError:  # an unclosed IPv6 bracket, say
        raise InvalidInput("invalid_url", "This is not a URL.", attr="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("invalid_url", "A webhook URL is an http or https URL.", attr="url")
    if parts.username or parts.password:
        raise InvalidInput("invalid_url", "A webhook URL carries no user or password.", attr="url")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
        if port == 0:
            raise ValueError(port)
    except ValueError:
        raise InvalidInput("invalid_url", "The URL's port is not a number.", attr="url") from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise InvalidInput(
            "unresolvable_url", f"{parts.hostname} does not resolve to an address.", attr="url"
        ) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        refusal = _address_refusal(address)
        if refusal:
            raise InvalidInput(
                "address_refused",
                f"{parts.hostname} resolves to {refusal} ({address}); webhooks go to "
                "public addresses only.",
                attr="url",
            )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, addresses[0], path)
