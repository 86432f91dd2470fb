"""Download URLs: stored bytes with the right Content-Type, traffic counting, review status."""

from __future__ import annotations

from ..support import md5
from ..support import png_like as png
from .conftest import JPEG_SIGNATURE, Bed


def test_download_serves_bytes_with_content_type_and_counts_traffic(bed: Bed) -> None:
    data = png("served", 4000)
    file_id = bed.upload(data, "served.png")
    detail = bed.detail(file_id)
    assert detail["downloadURL"].startswith(bed.base_url + "/dl/")
    assert detail["downloadURL"].endswith(f"/{file_id}.png")
    assert detail["userSelfURL"] == detail["downloadURL"]
    response = bed.http.get(detail["downloadURL"], timeout=10)
    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Type"] == "image/png"
    assert bed.detail(file_id)["totalTraffic"] == 4000
    bed.http.get(detail["downloadURL"], timeout=10)
    assert bed.detail(file_id)["totalTraffic"] == 8000
    head = bed.http.head(detail["downloadURL"], timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == "4000"
    assert bed.detail(file_id)["totalTraffic"] == 8000  # HEAD sends no bytes


def test_content_type_by_extension_then_by_bytes(bed: Bed) -> None:
    jpeg = JPEG_SIGNATURE + b"jfif" * 100
    by_name = bed.detail(bed.upload(jpeg, "photo.JPG"))["downloadURL"]
    assert bed.http.get(by_name, timeout=10).headers["Content-Type"] == "image/jpeg"
    by_bytes = bed.detail(bed.upload(png("noext"), "noext"))["downloadURL"]
    assert not by_bytes.rsplit("/", 1)[1].count(".")
    assert bed.http.get(by_bytes, timeout=10).headers["Content-Type"] == "image/png"
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    by_svg = bed.detail(bed.upload(svg, "logo.svg"))["downloadURL"]
    assert bed.http.get(by_svg, timeout=10).headers["Content-Type"] == "image/svg+xml"


def test_unknown_or_deleted_file_is_404(bed: Bed) -> None:
    file_id = bed.upload(png("deleted"), "deleted.png")
    url = bed.detail(file_id)["downloadURL"]
    assert bed.http.get(url.replace(".png", ".jpg"), timeout=10).status_code == 404
    bed.ok("/api/v1/oss/file/delete", {"fileIDs": [file_id]})
    assert bed.http.get(url, timeout=10).status_code == 404
    assert bed.http.get(bed.base_url + "/dl/1/nothing.png", timeout=10).status_code == 404


def test_review_status_applies_to_existing_and_later_files(bed: Bed) -> None:
    data = png("reviewed")
    existing = bed.upload(data, "before.png")
    assert bed.detail(existing)["status"] == 2
    assert bed.set("review", {"etag": md5(data), "status": 150})["updated"] == 1
    assert bed.detail(existing)["status"] == 150
    later = bed.create(data, "after.png")["fileID"]  # instant reuse
    assert bed.detail(later)["status"] == 150
    url = bed.detail(existing)["downloadURL"]
    assert bed.http.get(url, timeout=10).status_code == 403
    bed.set("review", {"etag": md5(data), "status": 50})
    assert bed.http.get(url, timeout=10).status_code == 200


def test_review_of_an_etag_not_yet_uploaded(bed: Bed) -> None:
    data = png("future")
    bed.set("review", {"etag": md5(data), "status": 101})
    file_id = bed.upload(data, "future.png")
    assert bed.detail(file_id)["status"] == 101


def test_self_domain_sets_user_self_url(bed: Bed) -> None:
    file_id = bed.upload(png("domain"), "domain.png")
    bed.config(self_domain="https://img.example.com/")
    detail = bed.detail(file_id)
    path = detail["downloadURL"][len(bed.base_url) :]
    assert detail["userSelfURL"] == "https://img.example.com" + path
    bed.config(self_domain="")
    assert bed.detail(file_id)["userSelfURL"] == ""
