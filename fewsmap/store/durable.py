"""Make what a writer wrote durable before it is published (fsync files and folders).

A rename is atomic but not durable by itself: after a power loss the new root metadata may
survive while the chunk files it points to were never flushed (docs/design/cube.md,
"Durability"). So every file of a run, and every folder that gained an entry, is fsynced
before the root metadata that publishes the run is written.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fewsmap.store.cube import ROOT_METADATA
from fewsmap.store.layout import RUN_DIM

# fsync releases the GIL and ext4 commits concurrent fsyncs together: 8 threads flushed a
# run of thousands of small chunk files 2x faster than one (docs/design/cube.md).
FSYNC_THREADS = 8


def fsync_path(path: Path) -> None:
    """Flush one file or folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_run(store: Path, slot: int) -> int:
    """Flush what appending the run in ``slot`` wrote: its chunks, coordinates, metadata.

    Of a data array (indexed by run, one chunk folder per slot) only the slot's folder is
    flushed; every other array (coordinates) is small and flushed whole. Returns the number
    of files and folders flushed.
    """
    paths = _run_paths(store, slot)
    with ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="fewsmap-fsync") as pool:
        list(pool.map(fsync_path, paths))
    return len(paths)


def _run_paths(group: Path, slot: int) -> list[Path]:
    """The files and folders of a group (the store, or an overview level) that appending
    the run in ``slot`` wrote or changed."""
    paths: list[Path] = [group]
    for child in sorted(p for p in group.iterdir() if (p / ROOT_METADATA).is_file()):
        if _is_group(child):  # the overviews and their levels: their arrays alike
            paths += [child / ROOT_METADATA, *_run_paths(child, slot)]
        elif _is_data_array(child):
            paths += [child, child / ROOT_METADATA]
            if (child / "c" / str(slot)).is_dir():
                paths += [child / "c", *_tree(child / "c" / str(slot))]
        else:
            paths += _tree(child)
    return paths


def _is_group(folder: Path) -> bool:
    return bool(json.loads((folder / ROOT_METADATA).read_bytes()).get("node_type") == "group")


def _tree(root: Path) -> list[Path]:
    """Every file and folder under ``root``, and ``root``."""
    paths = []
    for folder, _, names in os.walk(root):
        paths += [Path(folder, name) for name in names]
        paths.append(Path(folder))
    return paths


def _is_data_array(folder: Path) -> bool:
    """Whether the array in ``folder`` is a forecast variable (run, step, …, y, x)."""
    dims = json.loads((folder / ROOT_METADATA).read_bytes()).get("dimension_names") or []
    return len(dims) > 2 and dims[0] == RUN_DIM
