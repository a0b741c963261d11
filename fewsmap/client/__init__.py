"""fewsmap from Python: a client for a running service (`service`), maps drawn by the
service's own pipeline (`maps`) and the ``.fewsmap`` xarray accessor (`accessor`).

Nothing is imported here: ``import fewsmap`` registers the accessor without paying for httpx,
datashader or matplotlib.
"""
