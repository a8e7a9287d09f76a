"""The push-endpoint policy: where Pushcart agrees to POST.

A subscription endpoint comes from a browser, so it is attacker-controlled input and the
server will later send HTTP requests to it. Without a policy that is a server-side request
forgery hole. An endpoint is accepted only when it is

- ``https`` on port 443, without credentials in the URL;
- on a host matching one of ``PUSH_ENDPOINT_ALLOW`` (``host`` exactly or ``*.suffix``);

and the sender connects only to public unicast addresses (``public_address``, checked by the
sender on the address libcurl is about to open a socket to, so the answer checked is the one
connected to). The host is
not resolved when a browser subscribes: a DNS hiccup at that moment would lose a real
subscriber, and an answer then says nothing about the address connected to later.

``PUSHCART_INSECURE_ENDPOINTS`` (tests only) additionally opens ``http://127.0.0.1:<port>`` and
``http://localhost:<port>``, for a local mock push service; nothing else opens them.

The collect API checks at subscribe time; the dispatcher checks again at send time.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from server.core.errors import Invalid

MAX_ENDPOINT_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")

def public_address(address: str) -> bool:
    """Whether Pushcart may connect to ``address``: global unicast (no private, loopback,
    link-local, CGNAT, reserved or multicast address, nor an IPv4-mapped one of those)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` matches one of ``patterns`` (``example.com`` or ``*.example.com``)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.strip().lower().rstrip(".")
        if not pattern:
            continue
        if pattern.startswith("*."):
            suffix = pattern[1:]  # ".example.com": a subdomain, never the bare domain or "evilexample.com"
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif host == pattern:
            return True
    return False


def check_endpoint(url: Any, config: Mapping[str, Any]) -> str:
    """Return ``url`` when Pushcart may send to it; raises ``Invalid`` (422) otherwise.

    ``config`` is the app config (``PUSH_ENDPOINT_ALLOW``, ``PUSHCART_INSECURE_ENDPOINTS``).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_ENDPOINT_LENGTH:
        raise Invalid(f"endpoint must be a URL of at most {MAX_ENDPOINT_LENGTH} characters",
                      code="invalid_endpoint")
    if _SPACE_OR_CONTROL.search(url):
        raise Invalid("endpoint must not contain spaces or control characters", code="invalid_endpoint")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("endpoint is not a valid URL", code="invalid_endpoint") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise Invalid("endpoint must be an absolute URL without credentials or fragment",
                      code="invalid_endpoint")

    if (config.get("PUSHCART_INSECURE_ENDPOINTS") and host in LOOPBACK_HOSTS and parts.scheme == "http"
            and port is not None):
        return url  # a local mock push service in tests; nothing else gets past this line

    if parts.scheme != "https" or port not in (None, 443):
        raise Invalid("endpoint must be https on port 443", code="invalid_endpoint")
    if not host_allowed(host, config.get("PUSH_ENDPOINT_ALLOW") or ()):
        raise Invalid("endpoint host is not an allowed push service", code="endpoint_not_allowed")
    return url


def declarative_endpoint(url: str, patterns: Iterable[str]) -> bool:
    """Whether a push to ``url`` carries the Declarative Web Push form: its host matches one of
    ``patterns`` (``PUSH_DECLARATIVE_HOSTS``, Apple's push service by default)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return bool(host) and host_allowed(host, patterns)
