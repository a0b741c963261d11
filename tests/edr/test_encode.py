"""EDR answers written in chunks: joined, they are the documents written whole (issue #13)."""

from __future__ import annotations

import json

import pytest

from fewsmap.catalog import Catalog
from fewsmap.edr import encode
from fewsmap.edr.encode import coverage_json, covjson_chunks, csv_chunks
from tests.edr.test_data import ask

QUERIES = {
    "levels, a polygon": ("levels.t", "area",
                          {"coords": "POLYGON((0 30,20 30,20 50,0 30))"}),
    "members": ("ecmwf-ens-gust.fg10_6", "cube", {"bbox": "4,49,6,51"}),
    "projected": ("lambert.lon", "cube", {"bbox": "4,61,8,63"}),
    "one cell": ("naefs-mean.QPF", "position", {"coords": "POINT(-75 40)"}),
}


@pytest.mark.parametrize("name", QUERIES)
def test_chunks_join_to_the_whole_documents(catalog: Catalog, name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    layer, kind, params = QUERIES[name]
    answer = ask(catalog, layer, kind, **params)
    # One chunk per (parameter, time, level) block: the table as it was written whole.
    monkeypatch.setattr(encode, "CSV_CHUNK_CELLS", 1 << 30)
    whole_csv = list(csv_chunks(answer))
    # Chunks of a few rows and a few values: many bands and pieces per block.
    monkeypatch.setattr(encode, "CSV_CHUNK_CELLS", 7)
    monkeypatch.setattr(encode, "JSON_CHUNK_VALUES", 5)
    for cached_cells in (0, 1 << 30):  # cell columns formatted per block, or once
        monkeypatch.setattr(encode, "CSV_CACHED_CELLS", cached_cells)
        chunks = list(csv_chunks(answer))
        assert b"".join(chunks) == b"".join(whole_csv)
        assert len(chunks) >= len(whole_csv)
    pieces = list(covjson_chunks(answer))
    assert b"".join(pieces) == json.dumps(coverage_json(answer), allow_nan=False).encode()
    assert len(pieces) >= sum(values.size for values in answer.values.values()) // 5



def test_no_placeholder_is_left_in_the_document(catalog: Catalog) -> None:
    answer = ask(catalog, "naefs-mean.QPF", "position", coords="POINT(-75 40)")
    document = b"".join(covjson_chunks(answer))
    assert b"fewsmap-values-" not in document
    assert json.loads(document)["ranges"]["QPF"]["values"] == coverage_json(answer)[
        "ranges"]["QPF"]["values"]
