"""Ingest on a dask.distributed cluster: workers read the input files and write the chunks.

The client (the process running ``fewsmap ingest``) does everything that touches the store's
metadata, serially and under the store's writer lock, exactly as a serial ingest: it opens
the input files lazily (headers and coordinates only), checks them against the store, grows
the arrays and places every piece's labels (``fewsmap.store.writer._write_run``). Each piece
of the run (one input file's field, or one step of a big one) then becomes a task: a worker
reads it from its input file, writes its chunks into the run's unpublished slot and returns
its statistics and presence, which the client merges. Once every task finished, the client
writes the coordinates, flushes and publishes the run, once, atomically.

A failure anywhere (a damaged file, a worker killed more often than the scheduler allows)
fails the ingest after every task given out has finished, and the client undoes the
unpublished slot (``recover``) as after any failed write: nothing is published.

The inputs are hashed for the run records on the workers too. Workers need fewsmap installed
(the same version as the client), the input files at the same paths and the store at the
same location (docs/design/distributed.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fewsmap.errors import ConfigError, FewsmapError, IngestError

if TYPE_CHECKING:
    from distributed import Client

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
# mmap threshold at 128 KiB: every chunk buffer (about 1 MB) is then mapped, faulted in and
# unmapped again. A piece of 52 MB took 1.8-2.6 s to write on such a worker, 0.5-1.2 s
# without it (0.8-1.1 s in the client's process). ``None`` unsets it (``dask worker``: set
# DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None).
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
# Seconds to wait for the scheduler of ``--scheduler`` to answer.
CONNECT_TIMEOUT_S = 30


@contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """Connect to the scheduler at ``scheduler``, or start a local cluster of ``workers``
    processes of one thread each; close what was opened on leaving.

    Raises
    ------
    ConfigError
        If the scheduler does not answer, or ``workers`` is below 1.
    """
    distributed = _distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:  # refused, unreachable or timed out
            raise ConfigError(f"--scheduler {scheduler}: no dask scheduler answers there "
                              f"({exc})") from exc
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise ConfigError(f"--workers must be 1 or more, not {workers}")
    # Processes, one thread each: decoding and compressing hold the GIL. Any free port for
    # the scheduler's HTTP endpoints (8787 may be taken by another cluster).
    with _dask().config.set(WORKER_ENVIRON), \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


class DaskExecutor:
    """An ``Executor`` whose work runs in tasks on the workers of a dask.distributed client.

    Tasks are named after the function they run (``write_piece-…``, ``describe-…``).
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def map(self, function: Callable[[_Item], _Result], items: Sequence[_Item],
            done: Callable[[_Result], None] | None = None) -> list[_Result]:
        """Run ``function`` on every item in a task (see ``fewsmap.store.writer.Executor``).

        Every task is waited for, even after one failed: no worker may still be writing
        into a run's slot when the client undoes it.
        """
        name = f"{function.__name__}-{uuid.uuid4().hex}"
        keys = [f"{name}-{i}" for i in range(len(items))]
        futures: list[Any] = self.client.map(run_task, [function] * len(items), items, key=keys)
        order = {future.key: i for i, future in enumerate(futures)}
        results: list[_Result | None] = [None] * len(futures)
        failed: list[int] = []
        for future in _distributed().as_completed(futures):
            i = order[future.key]
            if future.status == "finished":
                results[i] = result = future.result()
                if done is not None:
                    done(result)
            else:
                failed.append(i)
        if failed:
            first = min(failed)
            raise _failure(items[first], futures[first].exception())
        return cast(list[_Result], results)


def _distributed() -> Any:
    """The dask.distributed module: imported when needed (it takes half a second), and
    untyped."""
    import distributed

    return distributed


def run_task(function: Callable[[_Item], _Result], item: _Item) -> _Result:
    """Run ``function`` on ``item`` in a dask task; lazy inputs are read in this thread."""
    with _dask().config.set(scheduler="synchronous"):
        return function(item)


def _dask() -> Any:
    """The dask module (its config is untyped)."""
    import dask

    return dask


def _failure(item: object, exc: BaseException | None) -> FewsmapError:
    """The error to report for a failed task: ours as it is, a worker's death as one."""
    if isinstance(exc, FewsmapError):
        return exc
    return IngestError(f"{item}: a dask worker failed on it: {type(exc).__name__}: {exc}")
