"""Which remote links imgsync tries, and when it tries a failed one again.

Real vaults link to things that are not images and to images that are gone. Trying each of them
on every run costs seconds per link and, through the service's offline migration, a new task on
the user's account each time. So, before any request:

- under ``sync.remote = "keep"`` every remote link is left alone (:data:`KEPT`);
- a link to a host that serves pages and videos, not images (:data:`NOT_IMAGE_HOSTS`, matched
  with their subdomains), or to a file whose extension says video, audio or a document
  (:data:`NOT_IMAGE_EXTENSIONS`) is skipped with the reason, never attempted;
- a URL that failed before is not tried again until its back-off has passed: one hour after the
  first failure, doubling with each failure after it, at most a week (:func:`backoff_ns`); until
  then it is answered "failed earlier (why); retry after <local time>" from the local index, with
  no request (``--retry-failed`` tries it anyway). A link found not to be an image (its
  ``Content-Type``) is remembered the same way, as a skip.

Only the standard library is imported: this is on the cache-only path of ``imgsync upload`` and
of a no-op re-sync.
"""

from __future__ import annotations

import posixpath
import time
from urllib.parse import unquote, urlsplit

from imgsync.store.attempts import NOT_IMAGE, PRIVATE_ADDRESS, UrlAttempt

__all__ = [
    "FIRST_RETRY_S",
    "KEPT",
    "LONGEST_RETRY_S",
    "NOT_IMAGE_EXTENSIONS",
    "NOT_IMAGE_HOSTS",
    "backoff_ns",
    "not_image_reason",
    "remembered",
]

# Why a remote link is left alone under the "keep" policy (the result's error, in words).
KEPT = "remote images are kept: sync.remote = keep"

# The first wait after a URL failed: a host that is down now is often back within the hour, and an
# hourly watcher or a user re-running sync should not pay for the same dead link every time.
FIRST_RETRY_S = 3600
# The longest wait: a link dead for weeks is most likely dead for good, but a week still notices
# a host that comes back (and --retry-failed tries at once).
LONGEST_RETRY_S = 7 * 24 * 3600
NS_PER_S = 1_000_000_000

# Hosts that serve pages and videos, not images: a note embeds them (`![](https://youtu.be/…)`)
# for the editor to show a player, and neither the service nor imgsync can make an image of them.
# Their image CDNs live on other domains (i.ytimg.com, pbs.twimg.com, i0.hdslb.com), which are
# not listed and are migrated as usual.
NOT_IMAGE_HOSTS = frozenset(
    {
        "youtube.com",
        "youtu.be",
        "youtube-nocookie.com",
        "vimeo.com",
        "twitter.com",
        "x.com",
        "t.co",
        "bilibili.com",
        "b23.tv",
        "tiktok.com",
        "douyin.com",
        "instagram.com",
        "facebook.com",
        "twitch.tv",
        "dailymotion.com",
    }
)

# Extensions that name video, audio or documents: Obsidian embeds them with the image syntax.
NOT_IMAGE_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".webm",
        ".mov",
        ".m4v",
        ".mkv",
        ".avi",
        ".ogv",
        ".mp3",
        ".wav",
        ".ogg",
        ".m4a",
        ".flac",
        ".pdf",
    }
)

# How a retry time is shown: local time, to the minute (a back-off is hours long).
RETRY_TIME_FORMAT = "%Y-%m-%d %H:%M"


def not_image_reason(url: str) -> str | None:
    """Why ``url`` is clearly not an image (its host or its extension), or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    labels = host.split(".")
    for start in range(len(labels) - 1):
        domain = ".".join(labels[start:])
        if domain in NOT_IMAGE_HOSTS:
            return f"not an image: {domain} serves pages and videos, not images"
    ext = posixpath.splitext(unquote(parts.path))[1].lower()
    if ext in NOT_IMAGE_EXTENSIONS:
        return f"not an image: a {ext} file"
    return None


def backoff_ns(failures: int) -> int:
    """How long to wait before trying a URL again after its ``failures``-th failure in a row."""
    seconds = min(LONGEST_RETRY_S, FIRST_RETRY_S * 2 ** max(0, min(failures - 1, 32)))
    return seconds * NS_PER_S


def retry_time(ns: int) -> str:
    """When a remembered failure is tried again (wall clock ns), as the user's local time."""
    return time.strftime(RETRY_TIME_FORMAT, time.localtime(ns / NS_PER_S))


def remembered(attempt: UrlAttempt | None, now_ns: int, *, private_allowed: bool) -> str | None:
    """The answer an earlier failure gives now, in words, or None when the URL is to be tried
    (never failed, its back-off is over, an offline task for it is known and must be asked, or
    it was refused as private and ``private_allowed`` now lets it through)."""
    if attempt is None or attempt.task_id or attempt.failures == 0:
        return None
    if now_ns >= attempt.next_try_ns:
        return None
    if attempt.kind == PRIVATE_ADDRESS and private_allowed:
        return None
    when = retry_time(attempt.next_try_ns)
    if attempt.kind == NOT_IMAGE:
        return f"{attempt.reason} (found earlier; looked at again after {when})"
    return f"failed earlier ({attempt.reason}); retry after {when}, or now with --retry-failed"
