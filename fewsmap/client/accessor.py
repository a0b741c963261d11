"""The ``.fewsmap`` accessor: ``ds.fewsmap.map(...)`` and ``da.fewsmap.map(...)`` draw a map.

Registered when `fewsmap` is imported; the drawing code (datashader, matplotlib) is imported
at the first map, so ``import fewsmap`` stays light for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

from fewsmap.errors import InvalidParameterValue

if TYPE_CHECKING:
    from PIL import Image


@xr.register_dataarray_accessor("fewsmap")  # type: ignore[no-untyped-call]
class DataArrayMaps:
    """``da.fewsmap``: maps of one variable."""

    def __init__(self, field: xr.DataArray) -> None:
        self._field = field

    def map(self, **options: Any) -> Image.Image:
        """Draw the field as a PIL image (shown inline in Jupyter).

        A variable of an `open_cube` Dataset is drawn from its store exactly as the
        service's GetMap draws it, or, read over HTTP from a fewsmap service
        (``/zarr/<store>``), by that service's GetMap; its scalar run, valid/lead time,
        member and level coordinates (from ``.sel``/``.isel``) are the defaults. Options are
        those of `fewsmap.client.maps.render_map`: run, time, lead_time, style, bbox, crs,
        width, height, member (a number, or an ensemble statistic such as ``"mean"`` or
        ``"above:20"``), elevation, dimensions, color_range, reducer, show_contours,
        transparent; a field read over HTTP also takes those of `Client.map`: ``baseline``
        (the change from ``"previous"`` or an earlier run) and ``accumulate`` (sums over a
        window, ``"PT24H"``).

        Any other field (computed, or part of the grid) must be 2-D and is drawn from memory
        with the service's regrid and colour stages; options: style (a `Style`, a style of
        the layer the field came from by name, coloured as GetMap colours it, or a
        matplotlib colour map name), bbox, crs, width, height, color_range, show_contours.

        Raises
        ------
        FewsmapError
            What the service would answer for a stored field; InvalidParameterValue for a
            field that cannot be drawn.
        """
        from fewsmap.client.maps import draw

        return draw(self._field, **options)


@xr.register_dataset_accessor("fewsmap")  # type: ignore[no-untyped-call]
class DatasetMaps:
    """``ds.fewsmap``: maps of a Dataset's variables."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset

    def map(self, variable: str | None = None, **options: Any) -> Image.Image:
        """Draw ``variable`` (needed when there are several) as ``ds[variable].fewsmap.map``.

        Raises
        ------
        InvalidParameterValue
            If ``variable`` is missing or unknown; else as `DataArrayMaps.map`.
        """
        names = [str(name) for name in self._dataset.data_vars]
        if variable is None and len(names) == 1:
            variable = names[0]
        if variable not in names:
            raise InvalidParameterValue(
                f"variable={variable!r}: name one of the Dataset's variables: "
                f"{', '.join(names) or '(none)'}")
        return DataArrayMaps(self._dataset[variable]).map(**options)
