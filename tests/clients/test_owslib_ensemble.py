"""OWSLib finds the ensemble statistics in the capabilities and gets them over HTTP (#15)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from owslib.wms import WebMapService
from PIL import Image

from fewsmap import open_cube
from fewsmap.products.ensemble import listed_statistics
from tests.clients.conftest import latest_valid_times

GUST = "ecmwf-ens-gust.fg10_6"


@pytest.fixture(scope="module")
def wms(base_url: str) -> WebMapService:
    return WebMapService(f"{base_url}/wms", version="1.3.0", timeout=60)


def test_owslib_reads_the_statistics_among_the_member_values(wms: WebMapService) -> None:
    members = wms[GUST].dimensions["ensemble_member"]
    assert members["values"] == [*(str(m) for m in range(1, 51)), *listed_statistics()]
    assert "ensemble_member" not in wms["naefs-mean.QTF"].dimensions


def test_owslib_gets_the_ensemble_mean_numpy_computes(wms: WebMapService, demo_stores: Path,
                                                      tmp_path: Path) -> None:
    time = latest_valid_times(demo_stores, "ecmwf-ens-gust")[1]
    response = wms.getmap(layers=[GUST], styles=[""], srs="CRS:84",
                          bbox=(-180.0, -90.0, 180.0, 90.0), size=(64, 64),
                          format="application/x-netcdf", time=time,
                          dimensions={"ensemble_member": "mean"})
    path = tmp_path / "mean.nc"
    path.write_bytes(response.read())
    got = xr.load_dataset(path)["fg10_6"]
    with open_cube(demo_stores / "ecmwf-ens-gust.zarr") as cube:
        members = cube["fg10_6"].isel(forecast_reference_time=-1, step=1).load()
    want = xr.DataArray(np.nanmean(members.values, axis=0), dims=members.dims[1:],
                        coords={d: members[d] for d in members.dims[1:]})
    np.testing.assert_array_equal(got.values, want.sel(latitude=got["latitude"],
                                                       longitude=got["longitude"]).values)


def test_owslib_draws_an_exceedance_probability(wms: WebMapService, demo_stores: Path) -> None:
    time = latest_valid_times(demo_stores, "ecmwf-ens-gust")[1]
    response = wms.getmap(layers=[GUST], styles=[""], srs="CRS:84", bbox=(-10, 35, 30, 65),
                          size=(80, 60), format="image/png", transparent=True, time=time,
                          dimensions={"ensemble_member": "above:15"})
    assert dict(response.info())["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.read()))
    assert image.size == (80, 60)
