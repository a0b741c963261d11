"""A Zarr v2 view of a store, for clients that read only v2 (GDAL's Zarr driver, QGIS).

A fewsmap store is Zarr v3. Its chunks are already what Zarr v2 stores: a v3 chain of the
``bytes`` codec and at most one compressor (zstd, blosc, gzip) writes the same bytes as a v2
array with that compressor, so a v2 client needs only v2 metadata and v2 chunk keys. The
metadata (``.zgroup``, ``.zattrs``, ``.zmetadata``, ``<array>/.zarray``, ``<array>/.zattrs``)
is derived from the published root ``zarr.json`` (its consolidated metadata), so the v2 view
shows exactly the runs the v3 view shows; a v2 chunk key ``<array>/<i>/<j>/…`` (dimension
separator ``/``) names the v3 chunk ``<array>/c/<i>/<j>/…``. Arrays whose codecs v2 cannot
express (sharding, transpose, checksums, strings) are left out of the view.

GDAL reads the grid mapping from a ``_CRS`` attribute; each data array naming a grid mapping
variable with ``crs_wkt`` gets one, and every array gets xarray's ``_ARRAY_DIMENSIONS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROOT_KEYS = (".zgroup", ".zattrs", ".zmetadata")
ARRAY_KEYS = (".zarray", ".zattrs")
_FILL_NAMES = ("NaN", "Infinity", "-Infinity")
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class NotInV2View(LookupError):
    """The key names nothing in the v2 view of the store."""


def is_metadata_key(parts: list[str]) -> bool:
    """Whether a key (split at ``/``) names v2 metadata: root or array ``.z*`` documents."""
    return (len(parts) == 1 and parts[0] in ROOT_KEYS) or (
        len(parts) == 2 and parts[1] in ARRAY_KEYS and not parts[0].startswith("."))


def v3_chunk_key(parts: list[str], ndim: int) -> str:
    """The v3 key of the v2 chunk ``<array>/<i>/<j>/…`` of an array with ``ndim`` dimensions.

    A 0-d array's one v2 chunk is ``<array>/0``; its v3 chunk is ``<array>/c``.
    """
    indices = parts[1:]
    if ndim == 0:
        if indices != ["0"]:
            raise NotInV2View("a 0-d array has the one chunk '0'")
        return f"{parts[0]}/c"
    if len(indices) != ndim:
        raise NotInV2View(f"a chunk of this array has {ndim} indices")
    return "/".join([parts[0], "c", *indices])


def metadata_document(root: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """The v2 metadata document ``parts`` names, from the root ``zarr.json`` of a store.

    Raises
    ------
    NotInV2View
        If the key names no array of the v2 view.
    """
    attributes = root.get("attributes", {})
    arrays = v2_arrays(root)
    if parts == [".zgroup"]:
        return {"zarr_format": 2}
    if parts == [".zattrs"]:
        return dict(attributes)
    if parts == [".zmetadata"]:
        metadata: dict[str, Any] = {".zgroup": {"zarr_format": 2}, ".zattrs": dict(attributes)}
        for name, (zarray, zattrs) in arrays.items():
            metadata[f"{name}/.zarray"] = zarray
            metadata[f"{name}/.zattrs"] = zattrs
        return {"zarr_consolidated_format": 1, "metadata": metadata}
    if parts[0] not in arrays:
        raise NotInV2View(f"no array {parts[0][:80]!r} in the Zarr v2 view of this store")
    zarray, zattrs = arrays[parts[0]]
    return zarray if parts[1] == ".zarray" else zattrs


def v2_arrays(root: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """``.zarray`` and ``.zattrs`` of every array v2 can express, by name."""
    nodes = (root.get("consolidated_metadata") or {}).get("metadata", {})
    arrays = {name: node for name, node in nodes.items()
              if node.get("node_type") == "array" and "/" not in name}
    found = {}
    for name, node in arrays.items():
        zarray = zarray_of(node)
        if zarray is not None:
            found[name] = (zarray, zattrs_of(node, arrays))
    return found


def zarray_of(node: dict[str, Any]) -> dict[str, Any] | None:
    """The ``.zarray`` of a v3 array's metadata, or None if v2 cannot express it."""
    encoding = node.get("chunk_key_encoding", {})
    separator = encoding.get("configuration", {}).get("separator", "/")
    grid = node.get("chunk_grid", {})
    codecs = node.get("codecs", [])
    if encoding.get("name") != "default" or separator != "/" or grid.get("name") != "regular":
        return None
    if not codecs or codecs[0].get("name") != "bytes" or len(codecs) > 2:
        return None
    endian = codecs[0].get("configuration", {}).get("endian", "little")
    dtype = _dtype(str(node.get("data_type")), endian)
    fill = _fill_value(node.get("fill_value"))
    compressor = _compressor(codecs[1]) if len(codecs) == 2 else None
    if dtype is None or fill is False or compressor is False:
        return None
    return {"zarr_format": 2, "shape": node["shape"],
            "chunks": grid["configuration"]["chunk_shape"] or [], "dtype": dtype,
            "fill_value": fill, "order": "C", "filters": None, "compressor": compressor,
            "dimension_separator": "/"}


def zattrs_of(node: dict[str, Any], arrays: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An array's attributes with ``_ARRAY_DIMENSIONS`` and, for GDAL, ``_CRS``."""
    attributes = dict(node.get("attributes", {}))
    attributes["_ARRAY_DIMENSIONS"] = list(node.get("dimension_names") or [])
    mapping = arrays.get(str(attributes.get("grid_mapping", "")), {})
    wkt = mapping.get("attributes", {}).get("crs_wkt")
    if wkt:
        attributes["_CRS"] = {"wkt": wkt}
    return attributes


def _dtype(data_type: str, endian: str) -> str | None:
    try:
        dtype = np.dtype(data_type)
    except TypeError:
        return None
    if dtype.kind not in "biuf":
        return None
    return dtype.newbyteorder("<" if endian == "little" else ">").str


def _fill_value(value: Any) -> Any:
    """The v2 form of a v3 fill value; False when v2 has none (hexadecimal bit patterns)."""
    if isinstance(value, str):
        return value if value in _FILL_NAMES else False
    return value


def _compressor(codec: dict[str, Any]) -> dict[str, Any] | bool | None:
    """The numcodecs form of a v3 compressor; False for one v2 cannot name."""
    name, config = codec.get("name"), codec.get("configuration", {})
    if name == "zstd" and not config.get("checksum", False):
        return {"id": "zstd", "level": config.get("level", 0)}
    if name == "gzip":
        return {"id": "gzip", "level": config.get("level", 5)}
    if name == "blosc" and config.get("shuffle", "noshuffle") in _BLOSC_SHUFFLE:
        return {"id": "blosc", "cname": config.get("cname", "lz4"),
                "clevel": config.get("clevel", 5),
                "shuffle": _BLOSC_SHUFFLE[config.get("shuffle", "noshuffle")],
                "blocksize": config.get("blocksize", 0)}
    return False
