"""The 123pan image-bed API client: one thin, typed method per documented endpoint
(:mod:`~imgsync.client.api`), over one transport with the single retry loop, the rate limiter and
the token provider; and the downloader that fetches remote images through the same session
machinery. No policy: what to call and when is the engine's.
"""
