"""Float32 Cloud-Optimized GeoTIFF of a native-grid slice, written by GDAL's COG driver.

GDAL's COG driver (through rasterio) rather than tifffile with hand-made GeoKeys: it writes
the CRS of any grid (polar stereographic, Lambert, rotated…) from WKT as GeoKeys, lays out
IFDs before the data with the tiles in the order COG readers expect, builds the overviews and
records nodata, all checked by GDAL's own validator; tifffile would leave each of those to us.
"""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from fewsmap.errors import InvalidFormat
from fewsmap.export.fields import FieldSlice
from fewsmap.time.instants import format_time

# COG tile edge: forecast grids are often a few hundred cells wide, so 256 (not GDAL's 512)
# still gives tiles and overviews for them.
BLOCK_SIZE = 256


def geotiff_bytes(field: FieldSlice) -> bytes:
    """Encode ``field`` as a float32 COG: one band per variable, NaN nodata, the grid's CRS.

    Full-resolution values are the stored ones; overviews (built by GDAL when the image is
    larger than a tile) average the cells, ignoring nodata.

    Raises
    ------
    InvalidFormat
        If the grid has no affine transform (curvilinear or unevenly spaced axes).
    """
    window = field.window
    if not window.regular:
        kind = "curvilinear" if window.curvilinear else "unevenly spaced (e.g. Gaussian)"
        raise InvalidFormat(f"the grid of {field.store.name!r} is {kind}: a GeoTIFF needs an "
                            "affine grid; ask for FORMAT=application/x-netcdf instead")
    height, width = window.shape
    profile = {
        "driver": "COG", "width": width, "height": height, "count": len(field.values),
        "dtype": "float32", "crs": rasterio.CRS.from_wkt(window.crs_wkt),
        "transform": Affine(*window.transform()), "nodata": float("nan"),
        "compress": "deflate", "predictor": 3,  # floating-point predictor: lossless, smaller
        "blocksize": BLOCK_SIZE, "overview_resampling": "average", "bigtiff": "if_safer",
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.update_tags(**_tags(field))
            for band, (name, values) in enumerate(zip(field.variables, field.values,
                                                      strict=True), start=1):
                dataset.write(np.asarray(values, dtype=np.float32), band)
                dataset.set_band_description(band, name)
                units = str(field.store.attributes(name).get("units", ""))
                if units:
                    dataset.set_band_unit(band, units)
        return bytes(memory.read())


def _tags(field: FieldSlice) -> dict[str, str]:
    """Dataset metadata: what the values are (run, valid time, member/level)."""
    tags = {"forecast_reference_time": format_time(field.run.reference_time),
            "valid_time": format_time(field.valid_time),
            "source": f"fewsmap store {field.store.name}"}
    tags.update({name: str(value) for name, value in field.labels})
    return tags
