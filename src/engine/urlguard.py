"""Which webhook targets may be reached: the server-side request forgery guard.

Checked twice. At creation, a URL must be HTTPS (plain HTTP only when the config allows it for
local development) and a literal non-global address is refused. At each new connection the
host is resolved again and every address it resolves to must be global, because DNS can change
after creation; the connection then goes to the address that was checked, never re-resolved.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .config import WebhookConfig
from .errors import InvalidInput

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name: what urlsplit leaves between `//` and the port, whitespace and the characters
# that end or split a network location excluded; one character at least that is no digit and
# no dot, since an IP literal may be a private address.
_HOST = r"[^\s\x00-\x1f\x7f\x85/?#@:\[\]\\]"
_NAMED = r"[^\s\x00-\x1f\x7f\x85/?#@:\[\]\\0-9.]"
_HOST_AND_REST = rf"://{_HOST}*{_NAMED}{_HOST}*(?::[0-9]{{1,4}})?(?:[/?#][^\s\x00-\x1f\x7f\x85]*)?$"


class Refused(Exception):
    """A target resolved to an address the configuration does not allow."""


def address_allowed(address: str, config: WebhookConfig) -> bool:
    """Whether a connection to this resolved address may be made."""
    if config.allow_private:
        return True
    try:
        ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global excludes loopback, private, link-local, shared (CGNAT), reserved, documentation
    # and unspecified ranges; multicast is never a webhook receiver.
    return ip.is_global and not ip.is_multicast


def url_pattern(config: WebhookConfig) -> str:
    """The URLs `check_url` takes, as far as a regular expression can say: https (or http where
    the config allows it), a host name (an IP literal may be private and is left out), an
    optional port, no credentials, no whitespace."""
    return ("^https?" if config.allow_http else "^https") + _HOST_AND_REST


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, config: WebhookConfig, field: str = "url") -> str:
    """The URL if it may be a webhook target, else InvalidInput naming `field`."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"'{field}' is longer than {MAX_URL_LENGTH} characters.", field=field)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput(f"'{field}' is not a valid URL.", field=field) from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"'{field}' must be an https:// URL.", field=field)
    if parts.scheme == "http" and not config.allow_http:
        raise InvalidInput(f"'{field}' must use HTTPS.", field=field)
    if parts.username or parts.password:
        raise InvalidInput(f"'{field}' must not carry credentials.", field=field)
    if any(ch.isspace() for ch in url):
        raise InvalidInput(f"'{field}' must not contain whitespace.", field=field)
    literal = _literal(host)
    if literal is not None and not address_allowed(str(literal), config):
        raise InvalidInput(
            f"'{field}' points to a private, loopback or link-local address.", field=field
        )
    return url
