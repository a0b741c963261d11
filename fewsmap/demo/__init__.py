"""The demo: real sample forecasts shipped with the package, ingested on first start."""

from __future__ import annotations

from pathlib import Path

from fewsmap.ingest import ingest
from fewsmap.products.catchments import CATCHMENTS_FOLDER
from fewsmap.store.backend import list_stores, store_in
from fewsmap.store.cube import is_store

DATA = Path(__file__).resolve().parent / "data"
# store name → input files (see data/SOURCE.md for origin and licence)
DEMO_STORES: dict[str, list[Path]] = {
    "naefs-mean": [DATA / "NAEFSmean_netcdf2022080912.nc"],
    "marfc-fmat": sorted(DATA.glob("FMAT12hr_20220601.*z.grb")),
    "ecmwf-ens-gust": [DATA / "wgust_ens.grib"],
}
# The MARFC GRIBs have no bitmap: 252 cells outside the forecast area (the north-east corner)
# hold 233.16 K (-40 °C) in every run, while every other value is above 260 K.
DEMO_MISSING_VALUES: dict[str, dict[str, float]] = {"marfc-fmat": {"t": 233.16}}


def has_stores(stores_dir: Path | str) -> bool:
    """Tell whether ``stores_dir`` (a folder or an object-store prefix) holds any cube."""
    return any(is_store(store) for store in list_stores(stores_dir).values())


def build_demo(stores_dir: Path | str, progress: bool | None = None) -> list[Path | str]:
    """Ingest the demo sample files into ``stores_dir`` (skipping runs already there)."""
    built: list[Path | str] = []
    for name, files in DEMO_STORES.items():
        store = store_in(stores_dir, name)
        ingest(store, files, progress=progress, missing_values=DEMO_MISSING_VALUES.get(name))
        built.append(store)
    copy_demo_catchments(stores_dir)
    return built


def copy_demo_catchments(stores_dir: Path | str) -> None:
    """Put the demo's synthetic catchment set beside a local stores folder, where the catalog
    finds it without configuration (`fewsmap.products.catchments.catchments_in_folder`)."""
    if not isinstance(stores_dir, Path):
        return
    folder = stores_dir / CATCHMENTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for source in (DATA / "catchments").glob("*.geojson"):
        (folder / source.name).write_bytes(source.read_bytes())
