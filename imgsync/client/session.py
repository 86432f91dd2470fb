"""The HTTP session every part of the client sends through, and what keeps secrets out of its logs.

One place builds the ``requests`` session (the API's transport and the image downloader each hold
one), so the user agent, the reading of the environment's proxies and CA bundle, the redaction of
query strings in urllib3's log lines and the secret-free wording of connection failures are the
same for both.

Secrets this guards: a presigned upload URL's query string is a credential, and a note's image URL
may carry a signature or a token in its query. requests quotes full URLs in its exception texts and
urllib3 logs every request line at DEBUG, so neither text reaches a log or a message unfiltered.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter

from imgsync import __version__

__all__ = ["USER_AGENT", "HttpSession", "reason", "without_query"]

USER_AGENT = f"imgsync/{__version__}"

# requests quotes the full URL (query string included) in its exception texts; keep only the
# OS-level reason, e.g. "[Errno 111] Connection refused".
ERRNO_REASON = re.compile(r"\[Errno -?\d+\] [^'\")]*")


class HttpSession:
    """A ``requests`` session as the client uses it.

    Made here (``session`` None), the session reads the environment once instead of on every call
    (see :func:`_environment_once`), looks proxies up once per host, and is closed by
    :meth:`close`. An injected session is used as it is (requests' own per-call lookups) and
    belongs to its owner: :meth:`close` leaves it open. ``adapter``, if given, is mounted for
    ``http://`` and ``https://`` on either (the downloader's private-address guard).

    Thread-safe as far as ``requests.Session`` is: one connection pool shared by every thread.
    """

    def __init__(
        self, session: requests.Session | None = None, *, adapter: BaseAdapter | None = None
    ) -> None:
        self._own = session is None
        self.session = session if session is not None else _environment_once(requests.Session())
        if adapter is not None:
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self._proxies: dict[str, dict[str, str]] = {}
        _install_query_redaction()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """``requests.Session.request`` with the environment's proxies for ``url``'s host."""
        return self.session.request(method, url, proxies=self._proxies_for(url), **kwargs)

    def close(self) -> None:
        """Close the session if it was made here (an injected one belongs to its owner)."""
        if self._own:
            self.session.close()

    def _proxies_for(self, url: str) -> dict[str, str] | None:
        """The environment's proxies for ``url``'s host, looked up once per host.

        Only for a session made here (its ``trust_env`` is off); an injected session keeps
        requests' own per-call lookup.
        """
        if not self._own:
            return None
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(key)
        return proxies


def _environment_once(session: requests.Session) -> requests.Session:
    """Read the environment's TLS settings once instead of on every request.

    With ``trust_env`` on, requests scans the whole environment for proxies and CA bundles on every
    call (a measurable share of a loopback call) and consults ~/.netrc. Proxies are still honoured,
    per host, through :meth:`HttpSession._proxies_for`; the CA bundle variables are read here.
    """
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def reason(exc: Exception) -> str:
    """A short, secret-free reason for a requests exception (its text quotes the full URL)."""
    if isinstance(exc, requests.Timeout):
        return "connect timeout" if isinstance(exc, requests.ConnectTimeout) else "read timeout"
    found = ERRNO_REASON.search(str(exc))
    if found:
        return found.group(0).strip()
    text = str(exc)
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed without a response"
    if "reset" in text.lower():
        return "connection reset"
    return type(exc).__name__


def without_query(url: str) -> str:
    """``url`` for a log line or a message: scheme, host and path, no query string or fragment
    (a presigned URL's query is a credential; a note's image URL may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# --------------------------------------------------------------------------------------------------
# urllib3 logs every request line at DEBUG, query string included; a presigned URL's query string is
# a credential. This filter keeps the path and drops the query from those records.


class _RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a
                for a in args
            )
        return True


_redaction_lock = threading.Lock()
_redaction_installed = False


def _install_query_redaction() -> None:
    global _redaction_installed
    with _redaction_lock:
        if not _redaction_installed:
            logging.getLogger("urllib3.connectionpool").addFilter(_RedactQuery())
            _redaction_installed = True
