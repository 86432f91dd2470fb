"""The local index's tables, as numbered migrations (``PRAGMA user_version``).

MIGRATIONS[n] takes the schema from version n to n + 1. Never edit a released step; append one.
"""

from __future__ import annotations

# The note stamps a re-sync cannot take on their stat alone: recorded too soon after the note's
# mtime to vouch for it (racy: 2 s, store/stamps.py's RACY_WINDOW_NS), with a recheck time, or
# with a name kept as bytes. Migration 4 indexes them apart by exactly this condition, and a query
# finds them through that index only if it spells the condition the same way: it is part of a
# released step, so changing it means a new index (and a new step), not an edit.
ODD_NOTE_STAMPS = "recheck_ns != 0 OR recorded_ns - mtime_ns < 2000000000 OR typeof(path) != 'text'"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE objects (
            namespace TEXT NOT NULL,
            md5 TEXT NOT NULL,
            size INTEGER NOT NULL,
            file_id TEXT NOT NULL,
            download_url TEXT NOT NULL,
            user_self_url TEXT NOT NULL,
            status INTEGER NOT NULL,
            filename TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, md5, size)
        ) WITHOUT ROWID""",
        "CREATE INDEX objects_by_file_id ON objects (namespace, file_id)",
        """CREATE TABLE file_hashes (
            path TEXT NOT NULL PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            md5 TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE urls (
            namespace TEXT NOT NULL,
            source_url TEXT NOT NULL,
            md5 TEXT NOT NULL,
            size INTEGER NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, source_url)
        ) WITHOUT ROWID""",
        "CREATE INDEX urls_by_object ON urls (namespace, md5, size)",
        """CREATE TABLE folders (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            folder_id TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE notes (
            namespace TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            digest TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, path)
        ) WITHOUT ROWID""",
    ),
    # 1 -> 2: what became of imgsync's attempts at a remote image URL that is not on the image bed
    # yet: the offline task started for it (so a later run polls it instead of starting a second
    # one), and the failures so far with their reason and when to try again (store/attempts.py);
    # and how long a note stamp vouches for its note.
    (
        """CREATE TABLE url_attempts (
            namespace TEXT NOT NULL,
            source_url TEXT NOT NULL,
            task_id TEXT NOT NULL,
            failures INTEGER NOT NULL,
            reason TEXT NOT NULL,
            kind TEXT NOT NULL,
            last_try_ns INTEGER NOT NULL,
            next_try_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, source_url)
        ) WITHOUT ROWID""",
        # A note whose only unfinished links are remote URLs that failed is stamped clean until
        # the first of their back-offs ends (0: for good): skipped unread until then.
        "ALTER TABLE notes ADD COLUMN recheck_ns INTEGER NOT NULL DEFAULT 0",
    ),
    # 2 -> 3: what imgsync learned about how one account's service behaves where the reference
    # leaves it open (which form of mkdir's name it takes): one value per name, asked once.
    (
        """CREATE TABLE service_facts (
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            recorded_ns INTEGER NOT NULL,
            PRIMARY KEY (namespace, name)
        ) WITHOUT ROWID""",
    ),
    # 3 -> 4: the odd note stamps (see ODD_NOTE_STAMPS), indexed apart: every sync and every pass
    # of a watcher reads them, and without the index that took a scan of all the account's stamps
    # (4 ms at 10,000 notes, 40 at 100,000) to find the few.
    (f"CREATE INDEX notes_odd ON notes (namespace) WHERE {ODD_NOTE_STAMPS}",),
)
SCHEMA_VERSION = len(MIGRATIONS)

TABLES = ("objects", "file_hashes", "urls", "folders", "notes", "url_attempts", "service_facts")
# Tables whose rows belong to one account (the others hold facts about local files).
NAMESPACED_TABLES = ("objects", "urls", "folders", "notes", "url_attempts", "service_facts")
