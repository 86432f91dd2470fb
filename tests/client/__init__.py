"""Tests of the API client layer: imgsync.client (api, models, transport, limiter, session, tokens,
auth, download, netguard)."""
