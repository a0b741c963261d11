"""The ``fewsmap`` command: ingest, serve, demo, runs. Names and flags are a public interface."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fewsmap import __version__
from fewsmap.errors import FewsmapError
from fewsmap.settings import Settings, load_settings
from fewsmap.store.run import format_time, parse_time


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FewsmapError as exc:
        print(f"fewsmap: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewsmap", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fewsmap {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="append the forecast runs in files to a store")
    ingest.add_argument("--store", required=True,
                        help="store folder (e.g. stores/naefs.zarr) or a name in --stores")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="NetCDF or GRIB files, or folders of them")
    ingest.add_argument("--stores", type=Path, help="stores folder for a store given by name")
    ingest.add_argument("--reference-time", type=_time,
                        help="forecast reference time for files that carry none (ISO 8601)")
    ingest.add_argument("--replace", action="store_true",
                        help="replace runs already in the store (default: skip them)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=_ingest)

    serve = commands.add_parser("serve", help="serve the stores as WMS-T")
    serve.add_argument("--stores", type=Path, help="stores folder (default: ./stores)")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="build the demo stores from the shipped samples")
    demo.add_argument("--stores", type=Path, help="stores folder (default: ./stores)")
    demo.set_defaults(func=_demo)

    runs = commands.add_parser("runs", help="list a store's runs and where they came from")
    runs.add_argument("store", type=Path, help="store folder")
    runs.set_defaults(func=_runs)
    return parser


def _time(text: str) -> np.datetime64:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc


def _store_path(store: str, stores_dir: Path | None) -> Path:
    if "/" in store or store.endswith(".zarr") or store in (".", ".."):
        return Path(store)
    return (stores_dir or load_settings().stores_dir) / f"{store}.zarr"


def _ingest(args: argparse.Namespace) -> int:
    from fewsmap.ingest import ingest

    store = _store_path(args.store, args.stores)
    results = ingest(store, args.files, reference_time=args.reference_time,
                     replace=args.replace, progress=False if args.quiet else None)
    for result in results:
        print(f"{store}: {result.message}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=getattr(args, "config", None),
        stores_dir=args.stores, host=getattr(args, "host", None),
        port=getattr(args, "port", None), workers=getattr(args, "workers", None),
    )


def _serve(args: argparse.Namespace) -> int:
    from fewsmap.app.serve import serve
    from fewsmap.demo import build_demo, has_stores

    settings = _settings(args)
    if settings.config_file is None and not has_stores(settings.stores_dir):
        print(f"no stores in {settings.stores_dir}: building the demo stores…", flush=True)
        build_demo(settings.stores_dir)
    serve(settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fewsmap.demo import build_demo

    for store in build_demo(_settings(args).stores_dir):
        print(f"demo store ready: {store}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from fewsmap.store.cube import ForecastStore

    store = ForecastStore(args.store)
    for run in store.runs:
        record = run.record
        print(f"{run.label}  {len(run.valid_times)} valid times "
              f"{format_time(run.valid_times[0])} … {format_time(run.valid_times[-1])}  "
              f"ingested {record.get('ingested_at')}  (reference time from "
              f"{record.get('reference_time_from')})")
        for source in run.sources:
            print(f"    {source['path']}  sha256 {source['sha256'][:16]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
