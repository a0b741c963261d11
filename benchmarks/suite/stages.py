"""Where fewsmap's time goes: its own render functions timed in-process, stage by stage.

The same GetMap URLs the server gets are parsed and resolved with fewsmap's protocol layer,
then drawn with the functions ``fewsmap.render.pipeline._draw`` chains (read_windows →
regrid → palette indices → palette PNG), each timed; ``render_maps`` is timed as a whole
too, so a pipeline that changes under this code shows up as a gap between the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def measure(stores_dir: Path, paths: Sequence[str], max_seconds: float) -> dict[str, Any]:
    """Median ms per stage over ``paths`` (fewsmap GetMap URLs), after one warm pass."""
    from fewsmap.catalog import Catalog
    from fewsmap.ogc.getmap import parse_getmap
    from fewsmap.params import Params
    from fewsmap.render import pipeline
    from fewsmap.render.colour import palette_for
    from fewsmap.render.encode import png_palette
    from fewsmap.render.regrid import regrid, warm_up
    from fewsmap.resolve.maps import resolve_maps
    from fewsmap.settings import load_settings

    settings = load_settings(environ={}, stores_dir=stores_dir)
    catalog = Catalog(settings)
    warm_up()
    stages: dict[str, list[float]] = {"parse+resolve": [], "read_window": [], "regrid": [],
                                      "colour": [], "encode": []}
    whole: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for warm in (True, False):
        for path in paths:
            if not warm and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            params = Params(parse_qsl(urlsplit(path).query, keep_blank_values=True))
            request = parse_getmap(params, settings.max_image_pixels)
            spec = resolve_maps(catalog, request)[0]
            t1 = time.perf_counter()
            windows = pipeline.read_windows(spec)
            t2 = time.perf_counter()
            field = regrid(windows[0], spec.canvas)
            t3 = time.perf_counter()
            automatic = pipeline.run_range(spec.run, spec.variables)
            palette = palette_for(spec.style, spec.color_range, automatic)
            indices = palette.indices(field)
            t4 = time.perf_counter()
            png_palette(indices, palette.lut)
            t5 = time.perf_counter()
            pipeline.render_maps([spec], request.format)
            t6 = time.perf_counter()
            if warm:
                continue
            for key, a, b in (("parse+resolve", t0, t1), ("read_window", t1, t2),
                              ("regrid", t2, t3), ("colour", t3, t4), ("encode", t4, t5)):
                stages[key].append((b - a) * 1000)
            whole.append((t6 - t5) * 1000)
    medians = {k: round(statistics.median(v), 3) for k, v in stages.items() if v}
    return {"n": len(whole), "stages_median_ms": medians,
            "sum_of_stage_medians_ms": round(sum(medians.values()), 3),
            "render_maps_median_ms": round(statistics.median(whole), 3) if whole else None}


def capabilities_builds(stores_dir: Path, repeats: int, max_seconds: float
                        ) -> dict[str, dict[str, Any]]:
    """Median ms to build the XML and JSON capabilities of every layer in-process, uncached:
    what the first request after a run lands pays (the server keeps the result)."""
    from fewsmap.catalog import Catalog
    from fewsmap.ogc.capabilities import capabilities_json, capabilities_xml
    from fewsmap.settings import load_settings

    catalog = Catalog(load_settings(environ={}, stores_dir=stores_dir))
    layers = list(catalog.layers.values())
    builds = {"XML": lambda: capabilities_xml(catalog, layers, "http://127.0.0.1/wms", False,
                                              None, "1.3.0"),
              "JSON": lambda: capabilities_json(catalog, layers, False, None)}
    results = {}
    for name, build in builds.items():
        build()  # warm
        times: list[float] = []
        deadline = time.perf_counter() + max_seconds
        while len(times) < repeats and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            build()
            times.append((time.perf_counter() - t0) * 1000)
        results[name] = {"n": len(times), "errors": 0,
                         "median_ms": round(statistics.median(times), 3),
                         "p95_ms": round(sorted(times)[int(0.95 * (len(times) - 1))], 3)}
    return results
