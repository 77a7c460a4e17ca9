"""The SQL of the SQLite store, as named constants (kine's ``pkg/drivers/generic`` style).

One append-only table holds the whole history: every create, update and delete appends a
row whose ``id`` is the global revision. A key's state at revision R is its newest row with
``id <= R``; a row with ``deleted = 1`` is a tombstone (it keeps the last value so a watcher
replaying it can report what was deleted). ``created = 1`` marks a row that (re)created its
key, so its event has no previous value. ``old_value`` is the value an update replaced (a
tombstone leaves it NULL: its ``value`` already holds those bytes), which makes every row
self-contained: replaying an event never needs a row that compaction may have removed.

The writer assigns ids itself (it is the only writer, so the next id is always known) and
inserts them explicitly, which lets a create store its own id as ``create_revision``;
``AUTOINCREMENT`` still guarantees an id is never reused, even after compaction.

Prefix ranges are ``name >= ? AND name < ?`` so they use the ``(name, id)`` index. For a
range with no upper end (the empty prefix) the store binds :data:`UNBOUNDED`.

kine also indexes ``(name)`` alone; in SQLite that index would be a duplicate, because
every index entry already ends with the rowid, so ``(name)`` is stored in ``(name, id)``
order too. One index serves both the per-key lookups and the prefix scans.
"""

from __future__ import annotations

UNBOUNDED = b""
"""Upper bound above every key: SQLite orders every TEXT value before every BLOB value, and a
bound parameter gets no affinity, so ``name < x''`` holds for all names."""

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        create_revision INTEGER NOT NULL,
        prev_revision INTEGER NOT NULL,
        lease INTEGER NOT NULL,
        value BLOB NOT NULL,
        old_value BLOB
    )
    """,
    "CREATE INDEX IF NOT EXISTS revisions_name_id_index ON revisions (name, id)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)

WRITER_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
)

READER_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA query_only = ON",
)

MANUAL_CHECKPOINTS = "PRAGMA wal_autocheckpoint = 0"
"""The store's write connection checkpoints on the writer thread itself, never inside a
commit (which may run on the event loop); see :mod:`control.store.sqlite`."""

CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"

BEGIN_WRITE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"

CURRENT_REVISION = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revisions'), 0)"

COMPACT_REV_NAME = "compact_rev"

GET_META = "SELECT value FROM meta WHERE name = ?"

SET_META = (
    "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)

# The key's newest row (the writer's compare-and-swap input): id, create_revision, deleted, value.
LATEST_ROW = (
    "SELECT id, create_revision, deleted, value FROM revisions WHERE name = ? ORDER BY id DESC LIMIT 1"
)

# The key's newest row at or before a revision: id, create_revision, deleted, value.
ROW_AT = "SELECT id, create_revision, deleted, value FROM revisions WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1"

INSERT = (
    "INSERT INTO revisions (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)"
)

# Every live key in [start, end) as of a revision, ascending: name, value, create_revision,
# id. Parameters: start, end, revision. Finds each key's newest row in one pass over the
# index range, then sorts; the fastest way to read a whole range.
LIST_AT = """
    SELECT r.name, r.value, r.create_revision, r.id
    FROM revisions AS r
    JOIN (
        SELECT MAX(id) AS id FROM revisions
        WHERE name >= ? AND name < ? AND id <= ?
        GROUP BY name
    ) AS newest ON r.id = newest.id
    WHERE r.deleted = 0
    ORDER BY r.name
"""

# The first live keys in [start, end) as of a revision, like LIST_AT. Parameters: start,
# end, revision, limit. Walks the index in key order and stops at the limit, so a page
# costs what it returns, not what the whole range holds.
LIST_PAGE_AT = """
    SELECT r.name, r.value, r.create_revision, r.id
    FROM revisions AS r
    WHERE r.name >= ?1 AND r.name < ?2 AND r.id <= ?3 AND r.deleted = 0
      AND r.id = (SELECT MAX(newer.id) FROM revisions AS newer WHERE newer.name = r.name AND newer.id <= ?3)
    ORDER BY r.name
    LIMIT ?4
"""

# How many live keys are in [start, end) as of a revision. Parameters: start, end, revision.
COUNT_AT = """
    SELECT COUNT(*)
    FROM revisions AS r
    JOIN (
        SELECT MAX(id) AS id FROM revisions
        WHERE name >= ? AND name < ? AND id <= ?
        GROUP BY name
    ) AS newest ON r.id = newest.id
    WHERE r.deleted = 0
"""

# History rows for a watch replay, in revision order. Parameters: first id, last id, start,
# end, limit. Columns: id, name, created, deleted, create_revision, prev_revision, value,
# old_value.
CHANGES = """
    SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value
    FROM revisions
    WHERE id >= ? AND id <= ? AND name >= ? AND name < ?
    ORDER BY id
    LIMIT ?
"""

# Compaction at revision R (both parameters): drop every row older than R that a reader at
# R or later can never see: a row superseded by a newer row of its key at or before R, and
# a tombstone (the key is absent from R on, and the rows it superseded go too).
COMPACT = """
    DELETE FROM revisions
    WHERE id < ?1 AND (
        deleted = 1
        OR id < (SELECT MAX(newer.id) FROM revisions AS newer WHERE newer.name = revisions.name AND newer.id <= ?1)
    )
"""
