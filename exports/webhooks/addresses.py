"""Where a webhook URL may lead: https to public addresses only, unless the installation allows
private networks (WEBHOOK_ALLOW_PRIVATE_NETWORKS). Checked at creation and at each delivery,
and a delivery connects to the very address checked here (no second lookup that DNS
rebinding could answer differently)."""
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from sparkexport.errors import Unprocessable


class AddressRefused(Unprocessable):
    """The URL, or an address its host resolves to, is not allowed (each raise names its code)."""


@dataclass(frozen=True)
class Target:
    """A URL taken apart, with the address a delivery connects to."""

    scheme: str
    host: str
    port: int
    path: str  # with its query string
    address: str

    @property
    def safe_url(self) -> str:
        """What logs may show: no query string (it may hold a token), no user info."""
        return f"{self.scheme}://{self.host}:{self.port}{self.path.split('?', 1)[0]}"


def url_parts(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable URL; AddressRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused(f"{url!r} is not a URL.", code="WEBHOOK_URL_INVALID") from None
    must = "The webhook URL must be https://host/path (http only where WEBHOOK_ALLOW_PRIVATE_NETWORKS is on)"
    if not parts.hostname:
        raise AddressRefused(f"{must}; {url!r} names no host.", code="WEBHOOK_URL_INVALID")
    if parts.scheme not in (("https", "http") if allow_private else ("https",)):
        raise AddressRefused(f"{must}; got {url!r}.", code="WEBHOOK_URL_NOT_HTTPS")
    if parts.username or parts.password:
        raise AddressRefused("The webhook URL must not hold a user name or password.", code="WEBHOOK_URL_INVALID")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def address_is_public(address: str) -> bool:
    """False for loopback, private, link-local (metadata services included), shared, unspecified,
    multicast and reserved addresses, and for IPv4-mapped IPv6 forms of them."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal address answers itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"The webhook host {host!r} does not resolve ({exc}).", code="WEBHOOK_HOST_UNRESOLVED") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def target_check(url: str, *, allow_private: bool) -> Target:
    """The URL's parts and the address to connect to; AddressRefused if any address it resolves
    to is not public (so a host cannot pass with one public address among private ones)."""
    scheme, host, port, path = url_parts(url, allow_private=allow_private)
    addresses = resolve(host, port)
    if not allow_private:
        refused = [address for address in addresses if not address_is_public(address)]
        if refused:
            raise AddressRefused(
                f"The webhook host {host!r} resolves to {', '.join(refused)}, which is not a public address "
                "(loopback, private, link-local and metadata addresses are refused).",
                code="WEBHOOK_ADDRESS_NOT_PUBLIC",
            )
    return Target(scheme, host, port, path, addresses[0])
