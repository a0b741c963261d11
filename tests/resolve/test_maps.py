"""Map resolution without a protocol: a `MapRequest` built in code (as the Python client
builds it) means what the same WMS query means, and the resolver picks runs, times and
frames by itself."""

from __future__ import annotations

import numpy as np
import pytest

from fewsmap.catalog import Catalog
from fewsmap.errors import InvalidDimensionValue, StyleNotDefined
from fewsmap.formats.media import PNG
from fewsmap.ogc.getmap import parse_getmap
from fewsmap.params import Params
from fewsmap.resolve.maps import MapRequest, resolve_frames, resolve_maps
from fewsmap.time.grammar import parse_time
from tests.synthetic import NEXT_RUN, T0

BBOX = (0.0, 40.0, 10.0, 50.0)


def request(**given: object) -> MapRequest:
    fields: dict[str, object] = {"layer": "s.lon", "style": "", "crs": "OGC:CRS84",
                                 "bbox": BBOX, "width": 40, "height": 40, "format": PNG}
    return MapRequest(**{**fields, **given})  # type: ignore[arg-type]


def test_a_request_built_in_code_means_what_the_wms_query_means(catalog: Catalog) -> None:
    parsed = parse_getmap(Params([
        ("service", "WMS"), ("version", "1.3.0"), ("request", "GetMap"), ("layers", "s.lon"),
        ("styles", ""), ("crs", "CRS:84"), ("bbox", "0,40,10,50"), ("width", "40"),
        ("height", "40"), ("format", "image/png"), ("time", "2026-01-01T12:00:00Z")]),
        max_pixels=1 << 20)
    built = request(time=parse_time("2026-01-01T12:00:00Z"))
    assert parsed == built
    [from_wms], [from_code] = resolve_maps(catalog, parsed), resolve_maps(catalog, built)
    assert (from_code.run, from_code.valid_time, from_code.labels, from_code.style,
            from_code.canvas) == (from_wms.run, from_wms.valid_time, from_wms.labels,
                                  from_wms.style, from_wms.canvas)


def test_the_latest_run_and_its_first_time_by_default(catalog: Catalog) -> None:
    [spec] = resolve_maps(catalog, request())
    assert spec.run.reference_time == NEXT_RUN and spec.valid_time == NEXT_RUN
    [first] = resolve_maps(catalog, request(reference_time=T0))
    assert first.run.reference_time == T0 and first.valid_time == T0


def test_a_run_or_style_that_does_not_exist_is_refused(catalog: Catalog) -> None:
    with pytest.raises(InvalidDimensionValue, match="no run at 2025-01-01"):
        resolve_maps(catalog, request(reference_time=np.datetime64("2025-01-01T00:00:00")))
    with pytest.raises(StyleNotDefined, match="'nope' is not defined"):
        resolve_maps(catalog, request(style="nope"))


def test_an_animation_has_one_frame_per_valid_time(catalog: Catalog) -> None:
    frames, substitutions = resolve_frames(catalog, request(
        time=parse_time("2026-01-01T06:00:00Z/2026-01-01T12:00:00Z")))
    assert [f.valid_time for f in frames] == [NEXT_RUN, NEXT_RUN + np.timedelta64(6, "h")]
    assert {f.run.reference_time for f in frames} == {NEXT_RUN} and substitutions == ()
