"""Derived products: pure functions on values read from the cube (DESIGN.md §7).

They sit between reading (`fewsmap.store.reads`) and drawing, so every front (maps, tiles,
GetFeatureInfo, time series, EDR, exports) serves the same numbers, equal to what numpy and
xarray compute on the cube.
"""
