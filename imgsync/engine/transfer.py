"""Content onto the image bed, once: create, slices, completion, detail.

This is the part of the engine that moves bytes (docs/api-facts.md, "Upload"); reading and hashing
them is :mod:`imgsync.engine.content`'s, deciding *what* to upload (cache answers, items, remote
URLs) :mod:`imgsync.engine.uploader`'s.

1. **create** in the configured folder under the configured name (:mod:`imgsync.engine.folders`).
   ``reuse`` means the service already holds the bytes: done. A same-name refusal means an earlier
   run (perhaps killed) already put the file there: it is found by listing, so no duplicate
   appears; other content under that name gets the md5 added to the name.
2. **slices** - each slice gets a fresh upload URL just before its PUT; a failed PUT is retried
   with a new URL; slices of one file go up in parallel.
3. **complete** - ``upload_complete``; while the service is still verifying (``async``, code
   20103), ``upload_async_result`` at least 1 s apart until a deadline. The preuploadID is kept
   from step 1: the completion answers do not echo it.
4. **detail** - the link (``downloadURL``, or ``userSelfURL``) and the review status: above 100
   the content review rejected the image and its link will not serve, so the item fails and
   nothing is cached as good.

Content the index knows is not sent again, but its entry is not trusted blindly
(:meth:`Transfer.vouched`): one the index cannot vouch for (not confirmed within
``cache.verify_after``, its review not ended) is checked with one ``detail`` first. Gone: it is
forgotten and the content uploaded afresh. Rejected: it is remembered as rejected, its link is
never handed out again, and the item fails saying so.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from imgsync.engine.cached import IndexTrust
from imgsync.engine.content import Content
from imgsync.engine.folders import (
    CODE_GENERIC,
    FolderGone,
    ImageBedFolders,
    candidate_names,
    names_folder,
)
from imgsync.engine.keyedlocks import KeyedLocks
from imgsync.engine.results import CACHED, REUSED, UPLOADED, Sent, Stored
from imgsync.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ImgsyncError,
    ItemError,
    NotFound,
    StillVerifying,
    UsageError,
)
from imgsync.store.cache import RemoteObject

if TYPE_CHECKING:
    from imgsync.client.api import Api, CreateResult, RemoteFile
    from imgsync.config import Settings
    from imgsync.store.cache import Cache

log = logging.getLogger(__name__)

# "请至少1秒后再次调用此接口": the reference's minimum spacing of async-result polls, used for
# offline-task progress too. Measured from the previous answer, so polls are >= 1 s apart however
# long a request takes.
POLL_INTERVAL_S = 1.0

# Attempts per slice, each with a fresh upload URL (the transport already retried each PUT on its
# own URL). An expired URL or a PUT that kept failing gets a new URL; four URLs is plenty.
SLICE_ATTEMPTS = 4

# Whole-run failures: every other item would fail the same way, so they are never retried or
# explained away here, and the run stops.
FATAL_ERRORS = (AuthError, ConfigError, UsageError)


class ReviewRejected(ItemError):
    """The service's content review rejected the image: its link will not serve."""


def rejection(remote: RemoteFile | RemoteObject, *, later: bool = False) -> ReviewRejected:
    """The error of an image the content review rejected; ``later`` when it was found on a check
    after its link had been handed out."""
    file_id = remote.file_id
    when = " after its link was handed out" if later else ""
    return ReviewRejected(
        f"rejected by content review{when} (status {remote.status}): the image bed will not"
        f" serve it ({remote.filename}, fileID {file_id}); imgsync never hands out its link"
        f" again (`imgsync rm {file_id}` deletes it)"
    )


class Transfer:
    """Puts content on the image bed once per run and caches what the service answered.

    Its collaborators are passed in ready (:meth:`imgsync.engine.uploader.Uploader.from_settings`
    builds them): ``api`` makes the calls, ``cache`` remembers what the service answered,
    ``folders`` places files, ``now`` dates their names, ``sleep`` and ``clock`` space the
    completion polls and bound their wait; ``trust`` says which index entries need checking first
    (by default from ``settings``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        api: Api,
        cache: Cache,
        folders: ImageBedFolders,
        now: Callable[[], datetime],
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        trust: IndexTrust | None = None,
    ) -> None:
        self.settings = settings
        self.trust = trust or IndexTrust(settings)
        self._api = api
        self._cache = cache
        self._folders = folders
        self._now = now
        self._sleep = sleep
        self._clock = clock
        self._content_locks = KeyedLocks()

    def store(
        self, content: Content, *, name: str, ext: str, folder: str | None = None
    ) -> tuple[RemoteObject, Stored]:
        """Put ``content`` on the image bed (once) and remember it; return the object and whether
        it was ``uploaded``, ``reused`` or (found meanwhile by another thread) ``cached``."""
        with self._content_locks.hold(f"{content.md5}:{content.size}"):
            if not self.trust.skip:
                known = self._cache.get_object(content.md5, content.size)
                obj = self.vouched(known) if known is not None else None
                if obj is not None:
                    return obj, CACHED
            folder_template = self.settings.upload.folder if folder is None else folder
            file_id, status = self._put(content, name, ext, folder_template)
            remote = self._api.detail(file_id)
            obj = self.remember(remote, md5=content.md5, size=content.size)
            return obj, status

    def vouched(self, obj: RemoteObject) -> RemoteObject | None:
        """``obj`` (an index entry) if its link may be handed out, checked with one ``detail``
        when the index cannot vouch for it; None when it is gone from the image bed (forgotten).

        A rejected image raises :class:`ReviewRejected`: at once when the index learned so
        within ``cache.verify_after``, else after a check (the review may have changed its mind).
        """
        if self.trust.vouches_for(obj):
            return obj
        if obj.rejected and not self.trust.stale(obj):
            raise rejection(obj)
        return self.recheck(obj)

    def recheck(self, obj: RemoteObject) -> RemoteObject | None:
        """Ask the service about an index entry: the entry refreshed (confirmed now), or None when
        the file is gone or no longer holds that content (forgotten). A rejection is remembered -
        never handed out again, and the next sync reads every note to report those linking to
        it - and raised as :class:`ReviewRejected`."""
        try:
            remote = self._api.detail(obj.file_id)
        except NotFound:
            log.info("%s (%s) is gone from the image bed; forgetting it", obj.filename, obj.file_id)
            self._cache.forget_file_id(obj.file_id)
            return None
        same = remote.etag.lower() == obj.md5 and remote.size == obj.size
        if remote.is_folder or not same:
            log.info("%s no longer holds the content the index filed it under", obj.file_id)
            self._cache.forget_file_id(obj.file_id)
            return None
        if remote.rejected:
            rejected = self._as_object(remote, obj.md5, obj.size)
            if not obj.rejected:
                log.info("%s (%s) was rejected by content review", obj.filename, obj.file_id)
            self._cache.put_rejected(rejected)
            raise rejection(remote, later=not obj.rejected)
        return self.remember(remote, md5=obj.md5, size=obj.size)

    def remember(
        self,
        remote: RemoteFile,
        *,
        md5: str | None = None,
        size: int | None = None,
        source_url: str | None = None,
    ) -> RemoteObject:
        """Check a remote file's review status and link, then cache it as good (its review may
        not have ended: then it is checked again on its next use). A rejected file is cached as
        rejected, so it is never handed out, and raises :class:`ReviewRejected`."""
        if remote.rejected:
            # An etag that is no md5 cannot be a lookup key: then there is nothing to remember.
            with contextlib.suppress(ValueError):
                self._cache.put_object(self._as_object(remote, md5, size))
            raise rejection(remote)
        if not remote.download_url:
            raise ItemError(f"the service gave no link for {remote.filename} ({remote.file_id})")
        obj = self._as_object(remote, md5, size)
        if source_url is not None:
            self._cache.put_url(source_url, obj)
        else:
            self._cache.put_object(obj)
        return obj

    @staticmethod
    def _as_object(remote: RemoteFile, md5: str | None, size: int | None) -> RemoteObject:
        return RemoteObject(
            md5=md5 or remote.etag,
            size=remote.size if size is None else size,
            file_id=remote.file_id,
            download_url=remote.download_url,
            user_self_url=remote.user_self_url or "",
            status=remote.status,
            filename=remote.filename,
        )

    def _put(self, content: Content, name: str, ext: str, folder_template: str) -> tuple[str, Sent]:
        """create → (reuse | slices → complete) in the configured folder; return the file ID and
        the status word. A folder that turns out to be gone is made again (once per run)."""
        candidates = candidate_names(
            self.settings.upload.filename, md5=content.md5, name=name, ext=ext, now=self._now()
        )
        return self._folders.within(
            folder_template,
            lambda folder_id: self._put_in(folder_id, folder_template, content, candidates),
        )

    def _put_in(
        self, folder_id: str, folder_template: str, content: Content, candidates: list[str]
    ) -> tuple[str, Sent]:
        folders = self._folders
        index = 0
        while index < len(candidates):
            filename = candidates[index]
            try:
                created = self._api.create(folder_id, filename, content.md5, content.size)
            except ApiError as exc:
                if exc.retryable or exc.code != CODE_GENERIC or names_folder(exc, folder_id):
                    raise
                existing = self._find_file_or_none(folder_id, filename)
                if existing is None:
                    if folders.unconfirmed(folder_template):
                        # Refused, and the folder does not list the name: a folder deleted on
                        # the image bed may list as empty.
                        raise FolderGone(folder_id, exc) from exc
                    raise
                if existing.etag.lower() == content.md5 and existing.size == content.size:
                    # An earlier run (perhaps killed before it could cache) put it there.
                    log.info("%s already on the image bed as %s", filename, existing.file_id)
                    return existing.file_id, REUSED
                log.info("%s is taken by other content; adding the hash", filename)
                index += 1
                continue
            folders.confirm(folder_template)
            if created.reuse:
                if created.file_id:
                    return created.file_id, REUSED
                found = self._reused_unnamed(created, content, folder_id, filename)
                if found is not None:
                    return found, REUSED
            return self._transfer(content, created, folder_id, filename), UPLOADED
        raise ItemError(f"the name {candidates[-1]} is taken by other content in that folder")

    def _reused_unnamed(
        self, created: CreateResult, content: Content, folder_id: str, filename: str
    ) -> str | None:
        """An instant upload (``reuse``) whose answer names no file: its ID, found by name.

        Public clients do not trust such an answer (OpenList's 123_open driver: "秒传成功才会返回
        正确的 FileID，否则为 0") and upload instead; asking detail for fileID "" would fail the
        item. Returns None when the bytes should be sent after all (the answer carried a
        preuploadID); raises when there is neither a file nor a way to send them.
        """
        log.info("%s: instant upload without a fileID; looking it up by name", filename)
        found = self._find_uploaded(folder_id, filename, content)
        if found is not None:
            return found
        if created.preupload_id:
            return None
        raise ItemError(
            f"the service reported {filename} as already stored (instant upload) but named no"
            " file, and none of that name and content is in its folder; run again later"
        )

    def _find_file_or_none(self, folder_id: str, filename: str) -> RemoteFile | None:
        try:
            return self._folders.find_file(folder_id, filename)
        except ApiError as exc:
            if exc.retryable or isinstance(exc, FATAL_ERRORS) or names_folder(exc, folder_id):
                raise  # a folder that is gone is made again by ImageBedFolders.within
            return None

    def _transfer(
        self, content: Content, created: CreateResult, folder_id: str, filename: str
    ) -> str:
        """Send the slices and wait for completion; return the new file ID."""
        preupload_id = created.preupload_id
        slice_size = created.slice_size if created.slice_size > 0 else content.size
        count = max(1, -(-content.size // slice_size))
        self._send_slices(content, preupload_id, slice_size, count)
        content.check_unchanged()
        return self._complete(preupload_id, content, folder_id, filename)

    def _send_slices(
        self, content: Content, preupload_id: str, slice_size: int, count: int
    ) -> None:
        """PUT every slice, ``upload.slice_concurrency`` at once; the first failure cancels the
        slices not yet started and is raised."""
        failed = threading.Event()

        def send(slice_no: int) -> None:
            if failed.is_set():
                return  # a sibling failed: the upload is lost anyway, save the bandwidth
            offset = (slice_no - 1) * slice_size
            length = min(slice_size, content.size - offset)
            body = content.slice_body(offset, length)
            for attempt in range(1, SLICE_ATTEMPTS + 1):
                url = self._api.get_upload_url(preupload_id, slice_no).presigned_url
                try:
                    self._api.put_slice(url, body, length)
                    return
                except ImgsyncError as exc:
                    if isinstance(exc, FATAL_ERRORS) or attempt == SLICE_ATTEMPTS:
                        failed.set()
                        raise
                    log.info(
                        "slice %d/%d failed (%s); retrying with a fresh URL", slice_no, count, exc
                    )
                except ValueError as exc:  # the file ended early: it changed under us
                    failed.set()
                    raise ItemError(f"file changed while uploading ({exc}); run again") from None

        workers = min(count, self.settings.upload.slice_concurrency)
        if workers <= 1:
            for slice_no in range(1, count + 1):
                send(slice_no)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="imgsync-slice") as pool:
            futures = [pool.submit(send, n) for n in range(1, count + 1)]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def _complete(self, preupload_id: str, content: Content, folder_id: str, filename: str) -> str:
        """Finish the upload; return the file ID.

        ``upload_complete`` until it stops answering 20103 ("still verifying, try again after
        1 s"), then, if it answered ``async``, ``upload_async_result`` until ``completed`` (20103
        there is "not yet" too). Every call waits >= 1 s after the previous answer; the whole
        wait is bounded by ``upload.poll_deadline``.

        Only a fileID is a result ("fileID不为0时，上传完成"): an answer that says ``completed``
        but names no file hands out no link. The file is then looked for in its folder by name
        at once (and again at the deadline), and the polling goes on meanwhile.
        """
        deadline_s = self.settings.upload.poll_deadline
        deadline = self._clock() + deadline_s
        completing = True  # still asking upload_complete; False once it answered async
        calls = 0
        completed_unnamed = False  # the service said "completed" without a fileID
        looked_up = False  # the folder was searched for it already (once is enough before the end)
        last = self._clock()  # when the previous answer arrived
        while True:
            if calls:
                self._sleep(max(0.0, last + POLL_INTERVAL_S - self._clock()))
                if self._clock() > deadline:
                    break
            calls += 1
            finished = False
            try:
                if completing:
                    done = self._api.upload_complete(preupload_id)
                    if done.file_id and (done.completed or not done.is_async):
                        return done.file_id
                    completing = not done.is_async
                    finished = done.completed
                else:
                    result = self._api.upload_async_result(preupload_id)
                    if result.completed and result.file_id:
                        return result.file_id
                    finished = result.completed
            except StillVerifying:
                pass
            except ApiError as exc:
                if exc.retryable or isinstance(exc, FATAL_ERRORS):
                    raise
                # A completion whose answer was lost and that was sent again may be refused
                # although the upload went through: then the file is in the folder by its name.
                found = self._find_uploaded(folder_id, filename, content)
                if found is not None:
                    return found
                raise
            if finished:
                completed_unnamed = True
                if not looked_up:
                    looked_up = True
                    log.info("%s: completed without a fileID; looking it up by name", filename)
                    found = self._find_uploaded(folder_id, filename, content)
                    if found is not None:
                        return found
            last = self._clock()
        found = self._find_uploaded(folder_id, filename, content)
        if found is not None:
            return found
        if completed_unnamed:
            raise ItemError(
                f"the service did not confirm the upload within {deadline_s:g} s ({calls} calls):"
                f" it reported it completed but named no file, and {filename} is not in its"
                " folder; run again later: the finished upload will be found, not repeated"
            )
        raise ItemError(
            f"the service did not confirm the upload within {deadline_s:g} s ({calls} calls);"
            " run again later: the finished upload will be found, not repeated"
        )

    def _find_uploaded(self, folder_id: str, filename: str, content: Content) -> str | None:
        """The file ID of ``content`` if it is in the folder under ``filename``."""
        existing = self._folders.find_file(folder_id, filename)
        if existing is not None and existing.etag.lower() == content.md5:
            return existing.file_id
        return None
