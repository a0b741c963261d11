"""Conditional requests (RFC 9110 §13) read alike by every answer with a validator.

Issue #17: maps, animations and capabilities matched If-None-Match by substring, so a tag
inside a malformed member matched, ``*`` and a second field line did not; the viewer's files
let If-Modified-Since decide after If-None-Match had not matched.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.datastructures import Headers

from fewsmap.app.conditional import entity_tags, is_fresh, range_applies
from fewsmap.app.server import create_app
from fewsmap.ingest import ingest
from fewsmap.settings import Settings
from tests.asgi_client import AppClient
from tests.forecast_files import forecast_file, run_time

ORIGIN = "https://dashboard.example"
WORLD = "-20037508,-20037508,20037508,20037508"
ANSWERS = {
    "getmap": ("/wms", {"service": "WMS", "request": "GetMap", "version": "1.3.0",
                        "layers": "feed.tp", "crs": "EPSG:3857", "bbox": WORLD,
                        "width": "64", "height": "64", "format": "image/png"}),
    "tile": ("/tiles/feed.tp/1/1/0.png", {}),
    "capabilities": ("/wms", {"service": "WMS", "request": "GetCapabilities"}),
    "zarr": ("/zarr/feed/zarr.json", {}),
    "viewer": ("/viewer/assets/index.html", {}),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> AppClient:
    """The app over one store with one run; CORS for one origin, so answers vary."""
    folder = tmp_path_factory.mktemp("conditional")
    stores = folder / "stores"
    stores.mkdir()
    ingest(stores / "feed.zarr", [forecast_file(folder, run_time(0))], progress=False)
    return AppClient(create_app(Settings(stores_dir=stores, cors_origins=(ORIGIN,))))


def headers(*fields: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode("latin-1")) for k, v in fields])


def test_entity_tags_are_parsed_as_a_list_with_commas_inside_quotes() -> None:
    assert entity_tags('"a", W/"b",,"c,d" ,  "e"') == ['"a"', 'W/"b"', '"c,d"', '"e"']
    assert entity_tags(" * ") is None
    assert entity_tags('x"a", "a"x, "b"') == ['"b"']  # malformed members are skipped
    assert entity_tags("") == []


@pytest.mark.parametrize(("fields", "fresh"), [
    ([("If-None-Match", '"abc"')], True),
    ([("If-None-Match", 'W/"abc"')], True),  # weak comparison (RFC 9110 §13.1.2)
    ([("If-None-Match", '"x", "abc"')], True),
    ([("If-None-Match", "*")], True),
    ([("If-None-Match", '"x"'), ("If-None-Match", '"abc"')], True),  # two field lines
    ([("If-None-Match", 'x"abc"')], False),  # the tag inside a longer token
    ([("If-None-Match", '"abc"x')], False),
    ([("If-None-Match", '"abcd"')], False),
    ([("If-None-Match", '"x,"abc",y"')], False),
    ([("If-None-Match", '"x"'), ("If-Modified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")],
     False),  # If-None-Match decides (RFC 9110 §13.1.3)
    ([("If-Modified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")], True),
    ([("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")], False),
    ([("If-Modified-Since", "yesterday")], False),
    ([], False),
])
def test_freshness(fields: list[tuple[str, str]], fresh: bool) -> None:
    assert is_fresh(headers(*fields), '"abc"', "Sat, 05 Dec 2026 10:00:00 GMT") is fresh


def test_only_get_and_head_are_answered_not_modified() -> None:
    assert not is_fresh(headers(("If-None-Match", "*")), '"abc"', method="POST")


def test_if_range_needs_a_strong_match_or_the_exact_date() -> None:
    date = "Sat, 05 Dec 2026 10:00:00 GMT"
    assert range_applies(None, '"abc"', None)
    assert range_applies('"abc"', '"abc"', None)
    assert not range_applies('W/"abc"', '"abc"', date)
    assert not range_applies('"abd"', '"abc"', date)
    assert range_applies(date, '"abc"', date)
    assert not range_applies(date, '"abc"', None)


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_every_answer_reads_if_none_match_as_a_list_of_tags(client: AppClient,
                                                             answer: str) -> None:
    path, params = ANSWERS[answer]
    first = client.get(path, params=params, headers={"Origin": ORIGIN})
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    for matching in ([("If-None-Match", etag)], [("If-None-Match", "W/" + etag)],
                     [("If-None-Match", f'"a,b", {etag}')], [("If-None-Match", "*")],
                     [("If-None-Match", '"other"'), ("If-None-Match", etag)]):
        again = request(client, path, params, [("Origin", ORIGIN), *matching])
        assert again.status_code == 304 and again.content == b"", (answer, matching)
        # RFC 9110 §15.4.5: the 304 says what the 200 said of caching.
        for name in ("etag", "cache-control", "vary"):
            assert again.headers.get(name) == first.headers.get(name), (answer, name)
        assert "content-type" not in again.headers
    assert "Origin" in first.headers["vary"]
    for stale in ([("If-None-Match", "x" + etag)], [("If-None-Match", etag + "x")],
                  [("If-None-Match", etag[:-2] + '"')],
                  [("If-None-Match", '"other"'),
                   ("If-Modified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")]):
        again = request(client, path, params, stale)
        assert again.status_code == 200 and again.content == first.content, (answer, stale)


def request(client: AppClient, path: str, params: dict[str, str],
            fields: list[tuple[str, str]]) -> httpx.Response:
    """GET with header fields that may repeat."""
    return client.get(path, params=params, headers=fields)

