"""OGC API - Environmental Data Retrieval (EDR 1.1): raw forecast values by position, area
and cube, as CoverageJSON or CSV, with collection (layer) and instance (run) metadata.

The routes live in `fewsmap.app.edr`; the design is described in ``docs/design/edr.md``.
"""
