"""imgsync's own download refuses hosts whose address is not public (imgsync/netguard.py).

No test here sends a packet beyond loopback. The ``net`` fixture answers name lookups for the test
names itself and wraps ``socket.socket.connect``: a connection to a loopback address goes ahead,
one to a "public" stand-in address is carried to a loopback server instead, and any other is
recorded and refused before it leaves the machine. The refusals under test happen before any
connection, which ``net.connects`` proves.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgsync.client.netguard import non_public_kind
from imgsync.engine.uploader import Uploader

from ..loopback import LoopbackServer
from ..support import CREATE_PATH, Control, image_bytes, md5, tls_server_context

# A public address (example.com's, once) that stands for a web host: connections to it are carried
# to a loopback server, so it is never contacted.
PUBLIC = "93.184.216.34"
LAN = "10.1.2.3"
ALLOW_HINT = "set upload.allow_private_urls = true"


@dataclass
class Net:
    """Name answers for the test names, and every connection attempted beyond loopback."""

    names: dict[str, Callable[[], list[str]]] = field(default_factory=dict)
    stand_ins: dict[str, int] = field(default_factory=dict)  # public address -> loopback port
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def name(self, host: str, *addresses: str) -> None:
        self.names[host] = lambda: list(addresses)


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    state = Net()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any, **kwargs: Any) -> Any:
        if host not in state.names:
            return real_getaddrinfo(host, port, family, *args, **kwargs)
        state.lookups.append(host)
        answers = state.names[host]()
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        result = []
        for address in answers:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result

    def guard(address: Any) -> Any:
        host = str(address[0]).split("%")[0]
        if ipaddress.ip_address(host).is_loopback:
            return address
        state.connects.append((host, address[1]))
        if host in state.stand_ins:
            return ("127.0.0.1", state.stand_ins[host])
        raise AssertionError(f"a connection to {address} was attempted")

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            address = guard(address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            address = guard(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return state


class Web:
    """A loopback HTTP server: images, redirects, and every request it saw (proxy-style too)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                web.hits.append(self.path)
                status, headers, body = web.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LoopbackServer(Handler, tls=tls).start()
        self.port = self.server.port

    def image(self, path: str, data: bytes) -> None:
        self.routes[path] = (200, {"Content-Type": "image/png"}, data)

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = (302, {"Location": location}, b"")

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def web() -> Iterator[Web]:
    server = Web()
    yield server
    server.close()


@pytest.fixture
def public_web(web: Web, net: Net) -> Web:
    """``web`` as the public host ``images.example.test``."""
    net.name("images.example.test", PUBLIC)
    net.stand_ins[PUBLIC] = web.port
    return web


def refused(result: Any) -> str:
    assert result.status == "failed", result
    assert result.error.startswith("refused: "), result.error
    assert ALLOW_HINT in result.error, result.error
    return result.error


# -------------------------------------------------------------------------- what counts as public


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private network"),
        ("172.16.0.1", "private network"),
        ("172.31.255.254", "private network"),
        ("192.168.1.50", "private network"),
        ("fc00::1", "private network"),
        ("fd12:3456::1", "private network"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "not publicly routable"),  # carrier-grade NAT
        ("255.255.255.255", "private network"),
        ("::ffff:192.168.1.50", "private network"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:a01:203::1", "private network"),  # 6to4 of 10.1.2.3
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("93.184.216.34", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_what_counts_as_a_non_public_address(address: str, kind: str | None) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


# ------------------------------------------------------------------- refused before connecting


def test_a_name_for_a_lan_address_is_refused_before_connecting(
    uploader: Uploader, control: Control, net: Net
) -> None:
    net.name("camera.lan.test", LAN)
    result = uploader.upload_url("http://camera.lan.test/snapshot")  # no extension: ours alone

    error = refused(result)
    assert "camera.lan.test resolves to 10.1.2.3, a private network address" in error
    assert net.connects == []
    assert control.requests(CREATE_PATH) == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://192.168.1.50/snapshot.jpg", "192.168.1.50 is a private network address"),
        ("http://169.254.169.254/latest/meta-data/iam", "169.254.169.254 is a link-local address"),
        ("https://10.1.2.3/cam.png", "10.1.2.3 is a private network address"),
        ("http://[fe80::1]/x.png", "fe80::1 is a link-local address"),
        ("http://[fd00::5]:8080/x", "fd00::5 is a private network address"),
        ("http://[::ffff:192.168.1.50]/x", "(that is 192.168.1.50) is a private network"),
        ("http://224.0.0.251/x", "224.0.0.251 is a multicast address"),
        ("http://0.0.0.0:8080/x.png", "0.0.0.0 is an unspecified address"),
        ("http://127.0.0.1:9/x.gif", "127.0.0.1 is a loopback address"),
        ("http://[::1]:9/x", "::1 is a loopback address"),
        ("http://localhost:9/x", "resolves to"),
    ],
)
def test_an_address_that_is_not_public_is_refused(
    uploader: Uploader, control: Control, net: Net, url: str, why: str
) -> None:
    # The service cannot fetch these (it is on the internet): its migration fails.
    control.faults([{"match": "/offline/download", "times": -1, "action": "code:1"}])
    result = uploader.upload_url(url)

    assert why in refused(result)
    assert net.connects == []
    assert control.requests(CREATE_PATH) == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    uploader: Uploader, net: Net
) -> None:
    net.name("mixed.example.test", PUBLIC, LAN)
    assert "resolves to 10.1.2.3" in refused(uploader.upload_url("http://mixed.example.test/a"))
    assert net.connects == []


# -------------------------------------------------------------------------------------- redirects


def test_a_public_host_is_downloaded_through_the_check(
    uploader: Uploader, control: Control, net: Net, public_web: Web
) -> None:
    data = image_bytes("png", "public host", 3000)
    public_web.image("/cat", data)
    result = uploader.upload_url("http://images.example.test/cat")

    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
    assert net.connects == [(PUBLIC, 80)]


@pytest.mark.parametrize(
    "target",
    [
        "http://camera.lan.test/snapshot",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:{port}/inside",
        "http://[::1]:{port}/inside",
    ],
)
def test_a_redirect_to_an_address_that_is_not_public_is_refused(
    uploader: Uploader, control: Control, net: Net, public_web: Web, target: str
) -> None:
    net.name("camera.lan.test", LAN)
    public_web.image("/inside", image_bytes("png", "inside", 3000))  # reachable, but ours only
    public_web.redirect("/go", target.format(port=public_web.port))
    result = uploader.upload_url("http://images.example.test/go")

    refused(result)
    assert net.connects == [(PUBLIC, 80)]
    assert public_web.hits == ["/go"]
    assert control.requests(CREATE_PATH) == []


def test_https_checks_the_certificate_against_the_name_not_the_address(
    uploader: Uploader,
    control: Control,
    net: Net,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guarded connection hands TLS the host name: SNI and verification are as usual."""
    context, cert = tls_server_context(tmp_path, "images.example.test")
    server = Web(tls=context)
    try:
        net.name("images.example.test", PUBLIC)
        net.stand_ins[PUBLIC] = server.port
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        data = image_bytes("png", "over tls", 3000)
        server.image("/cat", data)
        result = uploader.upload_url("https://images.example.test/cat")
    finally:
        server.close()

    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
    assert net.connects == [(PUBLIC, 443)]


def test_a_name_that_changes_its_answer_is_connected_to_as_checked(
    uploader: Uploader, control: Control, net: Net, public_web: Web
) -> None:
    """DNS rebinding: a name that answers public for the check, then private for the connect."""
    answers = iter([[PUBLIC]])
    net.names["rebind.example.test"] = lambda: next(answers, [LAN])
    data = image_bytes("png", "rebinding", 3000)
    public_web.image("/img", data)
    result = uploader.upload_url("http://rebind.example.test/img")

    assert result.status == "uploaded", result.error
    assert net.connects == [(PUBLIC, 80)]
    assert net.lookups == ["rebind.example.test"]


# ----------------------------------------------------------------------------------------- proxies


@pytest.fixture
def proxy(web: Web, net: Net, monkeypatch: pytest.MonkeyPatch) -> Web:
    """``web`` as the user's HTTP proxy (on loopback; the emulator bypasses it)."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{web.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("no_proxy", raising=False)
    return web


def test_through_a_proxy_the_name_is_checked_here_first(
    uploader: Uploader, net: Net, proxy: Web
) -> None:
    net.name("camera.lan.test", LAN)
    net.name("nowhere.test")  # does not resolve here
    lan = uploader.upload_url("http://camera.lan.test/snapshot")
    unknown = uploader.upload_url("http://nowhere.test/snapshot")

    assert "resolves to 10.1.2.3" in refused(lan)
    assert "nowhere.test does not resolve here" in refused(unknown)
    assert proxy.hits == []
    assert net.connects == []


def test_a_proxy_on_the_users_network_may_fetch_a_public_image(
    uploader: Uploader, control: Control, net: Net, proxy: Web
) -> None:
    net.name("images.example.test", PUBLIC)
    data = image_bytes("png", "through the proxy", 3000)
    proxy.image("http://images.example.test/cat", data)
    result = uploader.upload_url("http://images.example.test/cat")

    assert result.status == "uploaded", result.error
    assert md5(control.fetch(result.url)) == md5(data)
    assert proxy.hits == ["http://images.example.test/cat"]
    assert net.connects == []  # only the proxy, on loopback


# ---------------------------------------------------------------------------------------- opt in


def test_allow_private_urls_downloads_from_this_machine(
    make_settings: Callable[..., Any], control: Control, web: Web
) -> None:
    data = image_bytes("png", "loopback opt-in", 3000)
    web.image("/lan", data)
    url = f"http://127.0.0.1:{web.port}/lan"
    with Uploader.from_settings(make_settings()) as up:
        assert "127.0.0.1 is a loopback address" in refused(up.upload_url(url))
    assert web.hits == []

    with Uploader.from_settings(make_settings(upload={"allow_private_urls": True})) as up:
        result = up.upload_url(url)
    assert result.status == "uploaded", result.error
    assert control.fetch(result.url) == data
