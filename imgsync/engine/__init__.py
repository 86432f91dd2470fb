"""The upload engine: each image goes onto the image bed once, and only links that serve are
handed out.

Answers from the local index first (:mod:`~imgsync.engine.cached`), then reads and hashes once,
reuses what the service already holds, sends slices, waits for completion and review, places files
in folders under content-derived names, and moves remote images by the service's offline migration
(or downloads them through the client). Built from ready collaborators: an Api, a Cache, folders
and a transfer.
"""
