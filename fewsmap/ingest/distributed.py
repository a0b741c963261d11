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

Workers need fewsmap installed (the same version as the client), the input files at the
same paths and the store at the same location (docs/design/distributed.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fewsmap.errors import ConfigError, FewsmapError, IngestError
from fewsmap.store.writer import PieceExecutor, PieceResult, PieceWrite, write_piece

if TYPE_CHECKING:
    from distributed import Client

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
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def dask_executor(client: Client) -> PieceExecutor:
    """A ``PieceExecutor`` that writes each piece in a task on ``client``'s workers."""

    def execute(writes: Sequence[PieceWrite],
                done: Callable[[PieceResult], None]) -> list[PieceResult]:
        futures: list[Any] = client.map(write_on_worker, writes, pure=False)
        order = {future.key: i for i, future in enumerate(futures)}
        results: list[PieceResult | None] = [None] * len(futures)
        failed: list[int] = []
        # Every task is waited for, even after one failed: no worker may still be writing
        # into the slot when the client undoes it.
        for future in _distributed().as_completed(futures):
            i = order[future.key]
            if future.status == "finished":
                results[i] = result = future.result()
                done(result)
            else:
                failed.append(i)
        if failed:
            first = min(failed)
            raise _failure(writes[first], futures[first].exception())
        return [r for r in results if r is not None]

    return execute


def _distributed() -> Any:
    """The dask.distributed module: imported when needed (it takes half a second), and
    untyped."""
    import distributed

    return distributed


def write_on_worker(write: PieceWrite) -> PieceResult:
    """Write one piece (a dask task): its input is read here, in this task's thread."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return write_piece(write)


def _failure(write: PieceWrite, exc: BaseException | None) -> FewsmapError:
    """The error to report for a failed piece: ours as it is, a worker's death as one."""
    if isinstance(exc, FewsmapError):
        return exc
    return IngestError(f"{write.source}: '{write.variable}' could not be written by a dask "
                       f"worker: {type(exc).__name__}: {exc}")
