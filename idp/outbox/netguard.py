"""Keep the IdP's outbound calls to schools off internal addresses (SSRF, DNS rebinding).

Outside development a school's URIs may not name an internal address, and a delivery connects
only to an address it resolved and checked itself: neither a registered URI nor a school's own
DNS can point the IdP at loopback, the private network or a cloud metadata service.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
Policy = Callable[[IPAddress], str | None]

log = logging.getLogger(__name__)

_HOST_CHARS = re.compile(r"[a-z0-9._:%-]+")  # names, IPv4 and IPv6 (with zone) literals

# Cloud metadata services: AWS/GCP/Azure IMDS, AWS over IPv6, Azure's wire server, Alibaba,
# Oracle. Most lie in a blocked range anyway; named so the refusal says what they are.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "168.63.129.16", "100.100.100.200", "192.0.0.192")
)
# Ranges that ipaddress counts as global, or that Python before 3.12.4 misses.
_RANGES = tuple(
    (name, ipaddress.ip_network(net))
    for name, net in (
        ("shared address space (CGNAT)", "100.64.0.0/10"),
        ("reserved (IETF protocol assignments)", "192.0.0.0/24"),
        ("reserved (6to4 relay)", "192.88.99.0/24"),
        ("reserved (6to4, embeds an IPv4 address)", "2002::/16"),
        ("reserved (NAT64, embeds an IPv4 address)", "64:ff9b::/96"),
        ("reserved (NAT64, embeds an IPv4 address)", "64:ff9b:1::/48"),
        ("site-local", "fec0::/10"),
    )
)
_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
)


def blocked_reason(ip: IPAddress) -> str | None:
    """Say why a delivery must not reach ip (loopback, private, metadata…); None if public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 on the wire
    if ip in _METADATA:
        return "a cloud metadata address"
    for kind, test in _KINDS:
        if test(ip):
            return kind
    for name, net in _RANGES:
        if ip.version == net.version and ip in net:
            return name
    if ip.is_private:
        return "reserved" if ip.is_reserved else "private"
    return None if ip.is_global and not ip.is_reserved else "not a public address"


def literal_address(host: str) -> IPAddress | None:
    """Return the address a URI host spells in any form a resolver takes ([::1], 127.1, 0x7f.1,
    2130706433), or None for a host name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare.partition("%")[0])  # without an IPv6 zone (%eth0)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def host_refusal(host: str) -> str | None:
    """Say why a URI with this host may not be registered outside development; None if fine."""
    try:
        name = host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return "not a valid host name"
    if not _HOST_CHARS.fullmatch(name):  # "1.2.3.4 x" would pass inet_aton as 1.2.3.4
        return "not a valid host name"
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback name"  # RFC 6761 §6.3: always the local machine
    ip = literal_address(name)
    return None if ip is None else blocked_reason(ip)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Return every address the system resolver gives for host, in its order (one lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        for info in infos
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


class BlockedAddress(requests.RequestException):
    """A school's host resolved to an address a delivery must not reach; nothing was sent."""

    error = "blocked_address"


class PinnedAdapter(HTTPAdapter):
    """An HTTPAdapter that resolves each request's host once, refuses it if any address is
    internal, and connects to the checked address itself: no second lookup a school's DNS could
    answer differently (rebinding). Host header, TLS SNI and certificate stay on the host name.

    Never through a proxy: a proxy would resolve the name again.
    """

    def __init__(
        self, resolve: Resolver = resolve, check: Policy = blocked_reason, **kwargs: Any
    ) -> None:
        self._resolve, self._check = resolve, check
        super().__init__(**kwargs)

    def pinned_address(self, host: str, port: int) -> IPAddress:
        """Resolve host and return the address to connect to; BlockedAddress if any is internal."""
        try:
            addresses = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:  # as urllib3's own failed lookup
            raise requests.ConnectionError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise requests.ConnectionError(f"no address for {host}")
        for address in addresses:
            if reason := self._check(address):
                log.warning("delivery to %s refused: it resolves to %s (%s)", host, address, reason)
                raise BlockedAddress(f"{host} resolves to {address}: {reason}")
        return addresses[0]

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> ConnectionPool:
        """The keep-alive pool of the checked address (one per address and host name)."""
        host_params, tls = self.build_connection_pool_key_attributes(
            request, True if verify is None else verify, cert
        )
        pool_kwargs: dict[str, Any] = dict(tls)
        host, scheme = host_params["host"], host_params["scheme"]
        port = host_params["port"] or (443 if scheme == "https" else 80)
        address = self.pinned_address(host, port)
        if scheme == "https":  # also a key of the pool: a pool per address and host name
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = host
        return self.poolmanager.connection_from_host(
            scheme=scheme, host=str(address), port=host_params["port"], pool_kwargs=pool_kwargs
        )

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """Name the school's host in Host (the pool's host is the pinned address)."""
        if "Host" not in request.headers:
            url = cast(str, request.url)  # a prepared request's URL is a str
            request.headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
