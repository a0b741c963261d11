"""The ``fewsmap`` command: ingest, serve, demo, runs, prune, config-schema.

Names and flags are a public interface.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from obstore.exceptions import BaseError as ObjectStoreError

from fewsmap import __version__
from fewsmap.errors import ConfigError, FewsmapError, StoreError
from fewsmap.settings import Settings, config_schema, load_settings
from fewsmap.store.backend import store_in
from fewsmap.store.cube import is_store, store_name
from fewsmap.store.location import store_location
from fewsmap.store.retention import (
    PruneResult,
    RetentionPolicy,
    prune,
)
from fewsmap.time.instants import format_time, parse_stamp

if TYPE_CHECKING:
    from fewsmap.store.writer import Executor


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FewsmapError as exc:
        print(f"fewsmap: error: {exc}", file=sys.stderr)
        return 2
    except ObjectStoreError as exc:  # its first line says what failed; the rest is a dump
        print(f"fewsmap: error: object storage: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewsmap", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fewsmap {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="append the forecast runs in files to a store")
    ingest.add_argument("--store", required=True,
                        help="store folder (e.g. stores/naefs.zarr), s3:// URL "
                        "(s3://bucket/prefix/naefs.zarr) or a name in --stores")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="NetCDF or GRIB files, or folders of them")
    ingest.add_argument("--stores", help="stores folder for a store given by name")
    ingest.add_argument("--reference-time", type=_time,
                        help="forecast reference time for files that carry none (ISO 8601)")
    ingest.add_argument("--replace", action="store_true",
                        help="replace runs already in the store (default: skip them)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.add_argument("--config", type=Path,
                        help="TOML configuration (limits; [stores.<name>] retention policy, "
                             "missing_values and series_copy)")
    ingest.add_argument("--missing-value", action="append", default=[], type=_missing_value,
                        metavar="VARIABLE=VALUE",
                        help="a value that means 'no value' in VARIABLE (written as NaN); "
                             "repeatable, wins over the configuration")
    cluster = ingest.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="write the pieces on the workers of this dask.distributed "
                              "scheduler (e.g. tcp://10.0.0.5:8786); they need fewsmap "
                              "installed and the files and store at the same paths")
    cluster.add_argument("--workers", type=int, metavar="N", dest="dask_workers",
                         help="write the pieces on a local dask cluster of N processes")
    ingest.set_defaults(func=_ingest)

    prune = commands.add_parser("prune", help="remove old runs from a store (retention)")
    prune.add_argument("--store", required=True,
                       help="store folder (e.g. stores/naefs.zarr) or a name in --stores")
    prune.add_argument("--stores", help="stores folder for a store given by name")
    prune.add_argument("--config", type=Path,
                       help="TOML configuration whose [stores.<name>] sets the policy")
    prune.add_argument("--keep-runs", type=int, help="keep the last N runs")
    prune.add_argument("--keep-days", type=float,
                       help="keep runs whose reference time is within the last D days")
    prune.set_defaults(func=_prune)

    serve = commands.add_parser("serve", help="serve the stores as WMS-T")
    serve.add_argument("--stores", help="stores folder (default: ./stores)")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--workers", type=int,
                       help="worker processes (default: one per core, at most 8)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="build the demo stores from the shipped samples")
    demo.add_argument("--stores", help="stores folder (default: ./stores)")
    demo.set_defaults(func=_demo)

    schema = commands.add_parser(
        "config-schema", help="print the JSON Schema of the TOML configuration (for editors)")
    schema.set_defaults(func=_config_schema)

    runs = commands.add_parser("runs", help="list a store's runs and where they came from")
    runs.add_argument("store", help="store folder")
    runs.set_defaults(func=_runs)
    return parser


def _time(text: str) -> np.datetime64:
    try:
        return parse_stamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc


def _missing_value(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not name.strip() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected VARIABLE=NUMBER, not {text!r}")
    return name.strip(), number


def _store_path(store: str, settings: Settings) -> Path | str:
    """The location of ``--store``: a path or URL, a name in [stores] of the configuration,
    or a name in the stores folder (``--stores`` is already in ``settings``)."""
    if "/" in store or store.endswith(".zarr") or store in (".", ".."):
        return store_location(store, "--store")
    configured = settings.config.store_paths().get(store)
    return configured or store_in(settings.stores_dir, store)


def _ingest(args: argparse.Namespace) -> int:
    from fewsmap.ingest import ingest
    from fewsmap.ingest.limits import IngestLimits

    settings = _settings(args)
    store = _store_path(args.store, settings)
    limits = IngestLimits(settings.max_field_cells, settings.max_run_cells,
                          settings.max_gunzip_bytes)
    table = settings.config.stores.get(store_name(store))
    missing = {**(table.missing_values if table else {}), **dict(args.missing_value)}
    with _executor(args) as executor:
        results = ingest(store, args.files, reference_time=args.reference_time,
                         replace=args.replace, progress=False if args.quiet else None,
                         limits=limits, missing_values=missing, executor=executor,
                         series_copy=table.series_copy if table else True)
    for result in results:
        print(f"{store}: {result.message}")
    policy = settings.config.retention(store_name(store))
    if policy.active:  # retention after each ingest, when configured for the store
        _print_pruned(store, policy, prune(store, policy))
    return 0


@contextmanager
def _executor(args: argparse.Namespace) -> Iterator[Executor | None]:
    """Where ``ingest`` writes: on a dask cluster (``--scheduler``/``--workers``) or here."""
    if args.scheduler is None and args.dask_workers is None:
        yield None
        return
    from fewsmap.ingest.distributed import DaskExecutor, cluster_client

    with cluster_client(args.scheduler, args.dask_workers) as client:
        yield DaskExecutor(client)


def _prune(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store_path(args.store, settings)
    configured = settings.config.retention(store_name(store))
    policy = RetentionPolicy(
        args.keep_runs if args.keep_runs is not None else configured.keep_runs,
        args.keep_days if args.keep_days is not None else configured.keep_days)
    if not policy.active:
        raise ConfigError(f"no retention policy for store {store_name(store)!r}: pass "
                          f"--keep-runs/--keep-days or set [stores.{store_name(store)}]")
    if not is_store(store):
        raise StoreError(f"{store} is not a fewsmap forecast cube")
    _print_pruned(store, policy, prune(store, policy))
    return 0


def _print_pruned(store: Path | str, policy: RetentionPolicy, result: PruneResult) -> None:
    for label in result.removed:
        print(f"{store}: run {label} removed ({policy.describe()}); its chunks are deleted "
              "after the grace period")
    for label in result.vacuumed:
        print(f"{store}: chunks of retired run {label} deleted")
    if not result.removed:
        print(f"{store}: no run to remove ({policy.describe()})")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=getattr(args, "config", None),
        stores_dir=None if args.stores is None else store_location(args.stores, "--stores"),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None), workers=getattr(args, "workers", None),
    )


def _serve(args: argparse.Namespace) -> int:
    from fewsmap.app.serve import serve
    from fewsmap.catalog.catalog import configured_styles
    from fewsmap.demo import build_demo, has_stores

    settings = _settings(args)
    # The file was checked as it was read; check the styles too (SLD files, numbers that
    # cannot colour): a worker that fails on its catalog dies without a word.
    configured_styles(settings.config)
    # Object storage is never touched before the workers fork: obstore's runtime does not
    # survive a fork (its threads stay in the parent), so an empty bucket is served empty.
    local = isinstance(settings.stores_dir, Path)
    if settings.config_file is None and local and not has_stores(settings.stores_dir):
        print(f"no stores in {settings.stores_dir}: building the demo stores…", flush=True)
        build_demo(settings.stores_dir)
    serve(settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fewsmap.demo import build_demo

    for store in build_demo(_settings(args).stores_dir):
        print(f"demo store ready: {store}")
    return 0


def _config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from fewsmap.store.cube import ForecastStore

    store = ForecastStore(store_location(args.store, "runs"))
    for run in store.runs:
        record = run.record
        print(f"{run.label}  {len(run.valid_times)} valid times "
              f"{format_time(run.valid_times[0])} … {format_time(run.valid_times[-1])}  "
              f"ingested {record.get('ingested_at')}  (reference time from "
              f"{record.get('reference_time_from')})")
        for source in run.sources:
            print(f"    {source['path']}  sha256 {source['sha256'][:16]}…")
        for name, value in record.get("missing_values", {}).items():
            print(f"    {name}: {value:g} read as missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
