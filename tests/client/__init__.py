"""Tests of the API client layer: imgsync.http, imgsync.auth, imgsync.api."""
