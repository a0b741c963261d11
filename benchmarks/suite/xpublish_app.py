"""Serve fewsmap stores with xpublish + xpublish-wms: run by the peer venv's python.

Each run of each store becomes one dataset ``<store>-r<run>`` with dimensions
time × latitude × longitude (CF attributes set), opened lazily with
``xr.open_zarr`` (dask, as xpublish normally serves data). Imports nothing from fewsmap.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import xarray as xr


def run_datasets(name: str, path: str, variable: str) -> dict[str, xr.Dataset]:
    cube = xr.open_zarr(path, consolidated=True, decode_times=False)
    reference = np.asarray(cube["forecast_reference_time"].values, dtype="int64")
    steps = np.asarray(cube["step"].values, dtype="int64")
    order = np.argsort(steps, kind="stable")
    out = {}
    for run in np.argsort(reference, kind="stable"):
        one = cube[[variable]].isel(forecast_reference_time=int(run), step=order)
        one = one.drop_vars([v for v in ("forecast_reference_time", "valid_time", "step")
                             if v in one.coords or v in one.variables])
        seconds = reference[run] + steps[order]
        one = one.rename(step="time").assign_coords(
            time=("time", seconds.astype("datetime64[s]").astype("datetime64[ns]")))
        one = one.sortby("latitude")
        one["time"].attrs.update(standard_name="time", axis="T")
        one["latitude"].attrs.update(standard_name="latitude", units="degrees_north", axis="Y")
        one["longitude"].attrs.update(standard_name="longitude", units="degrees_east",
                                      axis="X")
        attrs = dict(one[variable].attrs)
        attrs.pop("grid_mapping", None)
        attrs.pop("coordinates", None)
        attrs.update(standard_name="air_temperature", units="degC",
                     long_name="2 m temperature")
        one[variable].attrs = attrs
        out[f"{name}-r{len(out)}"] = one
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", required=True, help='JSON {"name": "/path/name.zarr"}')
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variable", default="t2m")
    args = parser.parse_args()
    import xpublish

    datasets: dict[str, xr.Dataset] = {}
    for name, path in json.loads(args.stores).items():
        datasets.update(run_datasets(name, path, args.variable))
    rest = xpublish.Rest(datasets)
    rest.serve(host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
