"""One exception tree for imgsync.

Every error imgsync raises on purpose derives from :class:`ImgsyncError`. Each class knows the exit
status the command line maps it to (``exit_code``, see ``docs/contract.md``) and whether trying the
same thing again may succeed (``retryable``). Callers switch on classes and on the service's numeric
``code``, never on message text.

Service codes are mapped to classes in exactly one table, :data:`CODE_TO_ERROR`.
"""

from __future__ import annotations

# Exit statuses of every command (docs/contract.md, "Exit status").
EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4


class ImgsyncError(Exception):
    """Root of every error imgsync raises on purpose."""

    exit_code: int = EXIT_PARTIAL
    retryable: bool = False


class ConfigError(ImgsyncError):
    """The configuration (file, environment, flags) is unusable; the message names key and file."""

    exit_code = EXIT_USAGE


class UsageError(ImgsyncError):
    """The command was called wrongly."""

    exit_code = EXIT_USAGE


class CacheError(ImgsyncError):
    """The local index cannot be used. A usage-level problem of this machine, not of one item."""

    exit_code = EXIT_USAGE


class ItemError(ImgsyncError):
    """One item (a file, a URL, a note) could not be processed; the others go on."""

    exit_code = EXIT_PARTIAL


class PrivateAddressError(ItemError):
    """A download would reach an address that is not public; refused before connecting
    (:mod:`imgsync.client.netguard`; ``upload.allow_private_urls`` lifts it)."""


class NotAnImage(ItemError):
    """A remote link that is not an image (a video or page host, or a link serving something
    else): left alone and reported as skipped with this reason, not as a failure."""


class NetworkError(ImgsyncError):
    """The service could not be reached: connection refused or reset, DNS, timeout."""

    exit_code = EXIT_UNREACHABLE
    retryable = True


class ApiError(ImgsyncError):
    """The service answered with a non-zero ``code`` (or an unusable HTTP response).

    Carries what support asks for: the code, the service's message, the endpoint and ``x-traceID``.
    """

    exit_code = EXIT_PARTIAL

    def __init__(
        self,
        code: int,
        message: str,
        *,
        endpoint: str = "",
        trace_id: str = "",
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.trace_id = trace_id
        self.http_status = http_status
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.endpoint or 'request'} failed: code {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.http_status is not None and self.http_status != 200:
            text += f" (HTTP {self.http_status})"
        if self.trace_id:
            text += f" [x-traceID {self.trace_id}]"
        return text


class ServerError(ApiError):
    """HTTP 5xx, or a response that is not the documented JSON envelope."""

    exit_code = EXIT_UNREACHABLE
    retryable = True


class NotTheApi(ServerError):
    """The answer did not come from the 123pan open API (a web page, JSON without the envelope,
    a redirect): the base URL, a proxy or a captive portal is in the way. Asking again gets the
    same answer, so it is not retried; the message says what came back and what to check."""

    retryable = False

    def _describe(self) -> str:
        return self.message


class RateLimited(ApiError):
    """Code 429 (or HTTP 429): too many requests. Back off and try again."""

    exit_code = EXIT_UNREACHABLE
    retryable = True


class AuthError(ApiError):
    """Code 401: the access token is invalid or expired, or the credentials are wrong."""

    exit_code = EXIT_AUTH


class NotFound(ApiError):
    """Code 5066: the file does not exist."""


class QuotaExceeded(ApiError):
    """Code 5113: the account's traffic quota is used up."""


class StillVerifying(ApiError):
    """Code 20103: the service is still verifying an upload; ask again after at least 1 s."""

    retryable = True


# The one table from service codes to classes. Anything not here is a plain ApiError.
CODE_TO_ERROR: dict[int, type[ApiError]] = {
    401: AuthError,
    429: RateLimited,
    5066: NotFound,
    5113: QuotaExceeded,
    20103: StillVerifying,
}


def api_error(
    code: int,
    message: str,
    *,
    endpoint: str = "",
    trace_id: str = "",
    http_status: int | None = None,
) -> ApiError:
    """Build the right :class:`ApiError` subclass for a service ``code``."""
    cls = CODE_TO_ERROR.get(code, ApiError)
    if cls is ApiError and http_status is not None and http_status >= 500:
        cls = ServerError
    return cls(code, message, endpoint=endpoint, trace_id=trace_id, http_status=http_status)
