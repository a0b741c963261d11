"""Raw values out: one (run, time) slice as float32 Cloud-Optimized GeoTIFF or CF NetCDF,
and point time series as CF NetCDF.

Exports are WCS-like subsets: the grid's own cells inside a bounding box, in the grid's own
CRS and resolution, values untouched (never regridded). This module only names the formats,
so the protocol layer can parse them without importing the writers.
"""

from __future__ import annotations

# OGC 21-026 (Cloud Optimized GeoTIFF) media type.
GEOTIFF_FLOAT32 = "image/tiff; application=geotiff; profile=cloud-optimized"
NETCDF = "application/x-netcdf"
# GetMap FORMAT values (lower case) that ask for an export, and what each answers.
EXPORT_FORMATS = {
    "image/tiff;subtype=float32": GEOTIFF_FLOAT32,
    "image/tiff; subtype=float32": GEOTIFF_FLOAT32,
    "image/geotiff;subtype=float32": GEOTIFF_FLOAT32,
    GEOTIFF_FLOAT32: GEOTIFF_FLOAT32,
    "application/x-netcdf": NETCDF,
    "application/netcdf": NETCDF,
    "netcdf": NETCDF,
}
FILE_SUFFIXES = {GEOTIFF_FLOAT32: ".tif", NETCDF: ".nc"}

__all__ = ["EXPORT_FORMATS", "FILE_SUFFIXES", "GEOTIFF_FLOAT32", "NETCDF"]
