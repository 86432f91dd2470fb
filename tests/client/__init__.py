"""Tests of the API client layer: imgsync.client.transport, imgsync.client.tokens,
imgsync.client.api."""
