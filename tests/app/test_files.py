"""Answers made in memory honour byte ranges as files do: GDAL's ``/vsicurl/`` reads the
float32 COG export in place (issue #17), against the real server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import anyio
import httpx
import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window
from starlette.types import Message

from fewsmap.app.files import RangeBytesResponse
from tests.app.test_streaming import big_store
from tests.live_server import live_server

EXPORT = {"service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "big.lat",
          "crs": "CRS:84", "bbox": "-20,10,30,60", "width": "1000", "height": "1000",
          "format": "image/tiff;subtype=float32"}
WINDOW = Window(300, 500, 64, 64)  # inside one or two of the COG's 256² tiles


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ranges") / "stores"
    big_store(folder / "big.zarr")
    with live_server("--stores", str(folder)) as url:
        yield url


@pytest.fixture(scope="module")
def whole(base: str) -> httpx.Response:
    served = httpx.get(base + "/wms", params=EXPORT, timeout=60)
    assert served.status_code == 200, served.text[:300]
    return served


def export_url(base: str, **extra: str) -> str:
    return f"{base}/wms?{urlencode({**EXPORT, **extra})}"


def test_the_export_advertises_and_answers_single_ranges(base: str,
                                                         whole: httpx.Response) -> None:
    body, size = whole.content, len(whole.content)
    assert whole.headers["accept-ranges"] == "bytes" and size > 1 << 20
    head = httpx.head(export_url(base), timeout=60)
    assert head.headers["content-length"] == str(size) and head.content == b""
    for asked, (start, end) in (("bytes=0-16383", (0, 16384)),
                                (f"bytes={size - 100}-", (size - 100, size)),
                                ("bytes=-10", (size - 10, size)),
                                (f"bytes=5000-{size + 99}", (5000, size))):
        part = httpx.get(export_url(base), headers={"Range": asked}, timeout=60)
        assert part.status_code == 206, asked
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert part.content == body[start:end]
        assert part.headers["etag"] == whole.headers["etag"]


def test_several_ranges_come_as_multipart_byteranges(base: str, whole: httpx.Response) -> None:
    body, size = whole.content, len(whole.content)
    parts = httpx.get(export_url(base), headers={"Range": "bytes=0-99,2000-2099"}, timeout=60)
    assert parts.status_code == 206
    media_type, boundary = parts.headers["content-type"].split("; boundary=")
    assert media_type == "multipart/byteranges"
    assert int(parts.headers["content-length"]) == len(parts.content)
    sections = parts.content.split(b"--" + boundary.encode())
    assert sections[-1] == b"--" and len(sections) == 4
    for section, (start, end) in zip(sections[1:3], ((0, 100), (2000, 2100)), strict=True):
        head, content = section.split(b"\r\n\r\n", 1)
        assert f"Content-Range: bytes {start}-{end - 1}/{size}".encode() in head
        assert f"Content-Type: {whole.headers['content-type']}".encode() in head
        assert content == body[start:end] + b"\r\n"


def test_ranges_beyond_the_end_are_refused_with_the_length(base: str,
                                                           whole: httpx.Response) -> None:
    size = len(whole.content)
    refused = httpx.get(export_url(base), headers={"Range": f"bytes={size}-"}, timeout=60)
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{size}"
    # In the endpoint's format: a WMS ServiceExceptionReport here, JSON for a tile.
    assert b"ServiceExceptionReport" in refused.content
    assert b'code="RangeNotSatisfiable"' in refused.content
    tile = f"{base}/tiles/big.lat/3/4/2.png"
    tile_size = len(httpx.get(tile, timeout=60).content)
    refused = httpx.get(tile, headers={"Range": f"bytes={tile_size}-"}, timeout=60)
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{tile_size}"
    assert refused.json()["error"]["code"] == "RangeNotSatisfiable"


def test_if_range_gives_the_part_only_of_the_same_answer(base: str,
                                                         whole: httpx.Response) -> None:
    etag = whole.headers["etag"]
    same = httpx.get(export_url(base), headers={"Range": "bytes=0-9", "If-Range": etag},
                     timeout=60)
    assert same.status_code == 206 and same.content == whole.content[:10]
    for other in ('"other"', "W/" + etag):
        changed = httpx.get(export_url(base), headers={"Range": "bytes=0-9", "If-Range": other},
                            timeout=60)
        assert changed.status_code == 200 and changed.content == whole.content


def test_gdal_reads_the_cog_export_in_place_with_ranges(
        base: str, whole: httpx.Response, capfd: pytest.CaptureFixture[str]) -> None:
    with MemoryFile(whole.content) as memory, memory.open() as local:
        expected = local.read(1, window=WINDOW)
    # A URL of its own: GDAL keeps what it learnt of a URL (size, ranges) for the process.
    url = "/vsicurl/" + export_url(base, exceptions="XML")
    capfd.readouterr()
    # libcurl's trace of every request and answer goes to the process's stderr.
    with rasterio.Env(CPL_CURL_VERBOSE="YES", GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), \
            rasterio.open(url) as remote:
        assert (remote.width, remote.height, remote.dtypes[0]) == (1000, 1000, "float32")
        values = remote.read(1, window=WINDOW)
    trace = capfd.readouterr().err
    np.testing.assert_array_equal(values, expected)
    assert np.isfinite(values).all()
    assert "Range downloading not supported" not in trace
    gets = re.findall(r"^> GET .*$", trace, re.MULTILINE)
    ranges = [(int(a), int(b)) for a, b in re.findall(r"^Range: bytes=(\d+)-(\d+)", trace,
                                                      re.MULTILINE)]
    assert len(gets) == len(ranges) >= 2, trace[-3000:]  # every GET asked for a range
    assert re.findall(r"^< HTTP/1.1 (\d+)", trace, re.MULTILINE).count("200") <= 1  # HEAD
    fetched = sum(end - start + 1 for start, end in ranges)
    assert fetched < len(whole.content) / 4, (fetched, len(whole.content), ranges)


def test_small_map_images_answer_ranges_too(base: str) -> None:
    png = {**EXPORT, "format": "image/png", "width": "64", "height": "64"}
    whole = httpx.get(base + "/wms", params=png, timeout=60)
    part = httpx.get(base + "/wms", params=png, headers={"Range": "bytes=1-3"}, timeout=60)
    assert whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == whole.content[1:4] == b"PNG"


def sent_with_every_thread_taken(response: RangeBytesResponse, method: str = "GET",
                                 headers: tuple[tuple[bytes, bytes], ...] = (),
                                 ) -> list[Message]:
    """The ASGI messages ``response`` sends while anyio has no worker thread to give (as
    when every thread is busy): an answer in memory must not wait for one."""
    sent: list[Message] = []
    scope = {"type": "http", "method": method, "headers": list(headers),
             "asgi": {"version": "3.0", "spec_version": "2.3"}}

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client stays until the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def answer() -> None:
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = 1
        await threads.acquire()
        try:
            with anyio.fail_after(2):
                await response(scope, receive, send)
        finally:
            threads.release()

    asyncio.run(answer())
    return sent


def test_answers_in_memory_are_sent_without_waiting_for_a_worker_thread() -> None:
    content = bytes(range(256)) * 40  # a tile's or a time series' few kB
    start, body = sent_with_every_thread_taken(RangeBytesResponse(content, "image/png"))
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-length"] == str(len(content)).encode()
    assert body["body"] == content and not body.get("more_body", False)
    start, body = sent_with_every_thread_taken(RangeBytesResponse(content, "image/png"), "HEAD")
    assert dict(start["headers"])[b"content-length"] == str(len(content)).encode()
    assert body["body"] == b""
    start, *parts = sent_with_every_thread_taken(RangeBytesResponse(content, "image/png"),
                                                 headers=((b"range", b"bytes=1-3"),))
    assert start["status"] == 206
    assert b"".join(part["body"] for part in parts) == content[1:4]
