"""Keep imgsync's own downloads away from addresses that only this machine can reach.

A note may name any URL; when the service cannot fetch it, imgsync downloads it here and publishes
it on a public image bed. A URL that leads to this machine (loopback), its network (10/8,
172.16/12, 192.168/16, fc00::/7), a link-local address (169.254/16 with the cloud metadata
service, fe80::/10) or the like would publish what only we can see, so such downloads are refused
unless ``upload.allow_private_urls``.

The check is made where the connection is made: :class:`GuardedAdapter` (a requests adapter)
resolves the host, refuses it if any of its addresses is not public, and connects to the addresses
it checked, not to a second resolution's answer (DNS rebinding). Every connection, so every
redirect hop, goes through it. Through a proxy the connection goes to the proxy (the user's own
choice) and the proxy resolves the host; there the host is resolved and checked here before the
request is sent, which is the best that can be done, and a host that does not resolve here is
refused: where it leads cannot be checked.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from imgsync.errors import PrivateAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HINT = "set upload.allow_private_urls = true in the config to publish such images"

# The well-known NAT64 prefix (RFC 6052): its last 32 bits are the IPv4 address reached.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address ("loopback", "private network", ...), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return non_public_kind(inner)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private network"
    if not ip.is_global:
        return "not publicly routable"
    return None


def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is dropped


def _refuse(host: str, ip: IPAddress, kind: str) -> PrivateAddressError:
    article = "an" if kind[0] in "aeiou" else "a"
    what = f"{article} {kind} address"
    inner = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    shown = f"{ip} (that is {inner})" if inner is not None else str(ip)
    if _parse_or_none(_bare(host)) == ip:
        where = f"{shown} is {what}"
    else:
        where = f"{host} resolves to {shown}, {what}"
    return PrivateAddressError(
        f"refused: {where}; imgsync does not put what only this machine or its network can "
        f"reach on a public image bed ({ALLOW_HINT})"
    )


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _parse_or_none(text: str) -> IPAddress | None:
    try:
        return _parse(text)
    except ValueError:
        return None


def resolve_public(host: str, port: int) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for a TCP connection to ``host``: every answer, all of them public.

    Raises :class:`PrivateAddressError` if any address is not public (a name that answers with
    a public and a private address is refused, not filtered), ``socket.gaierror`` if the name
    does not resolve.
    """
    infos = socket.getaddrinfo(_bare(host), port, allowed_gai_family(), socket.SOCK_STREAM)
    for info in infos:
        ip = _parse(info[4][0])
        kind = non_public_kind(ip)
        if kind is not None:
            raise _refuse(host, ip, kind)
    return infos


class _GuardedConnectionMixin:
    """``_new_conn`` of urllib3's connections: resolve, check, connect to the checked address."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    proxy: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        if self.proxy is not None:  # to the user's proxy; the target was checked in send()
            return super()._new_conn()  # type: ignore[misc]
        try:
            infos = resolve_public(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        error: OSError | None = None
        for family, socktype, proto, _canon, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):  # not "default"
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        reason = error or OSError(f"no address to connect to for {self.host}")
        raise NewConnectionError(
            self,  # type: ignore[arg-type]
            f"Failed to establish a new connection: {reason}",
        ) from error


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter that connects only to public addresses (see the module's docstring)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def send(
        self,
        request: Any,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Any:
        if select_proxy(request.url, proxies):
            parts = urlsplit(request.url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                resolve_public(host, port)
            except socket.gaierror:
                raise PrivateAddressError(
                    f"refused: {host} does not resolve here, so where the proxy would fetch it "
                    f"from cannot be checked ({ALLOW_HINT})"
                ) from None
        return super().send(request, stream, timeout, verify, cert, proxies)
