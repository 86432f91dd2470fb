"""The notes: which files are notes, reading and writing them without losing a byte or an edit,
what their image references point at, whether a note changed since its last clean sync, and
(:mod:`imgsync.notes.markdown`) finding and rewriting image links byte-exactly.

Only the filesystem; never the network.
"""
