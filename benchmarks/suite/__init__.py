"""fewsmap's benchmark suite: the real server against its peers and an in-process floor.

Run from the repository root: ``.venv/bin/python -m benchmarks.suite`` (``--help``). The
modules: ``data`` (synthetic cubes written with fewsmap's own writer), ``workload`` (the
seeded requests), ``client`` (the load generator), ``procs`` (subprocesses, CPU, memory),
``servers`` (fewsmap, xpublish-wms, MapServer), ``floor`` (the in-process floor),
``stages`` (fewsmap's render stages timed in-process), ``report`` (table, JSON, plot).
"""
