"""Ingest processes for the crash test, forked from one process that imported fewsmap once.

``python -m tests.store.crash_writer`` prints ``ready``, then reads one job a line on stdin
(JSON: ``store``, ``files``, ``log`` and the optional ``crash_at_op``, ``crash_at``,
``kill_after_s``, ``trace``, ``prune``). For each it forks a process that runs ``ingest``
(or, with ``prune`` = ``{"keep_runs": n}``, two prunes with no grace period: the first
removes runs, the second deletes their chunks) and writes ``done`` to ``log`` if it
finishes; it prints ``pid <pid>``, then ``exit <code>`` once the process ended (``-9``:
killed by SIGKILL). The process is killed with SIGKILL

* ``kill_after_s`` seconds after the fork (sent by this parent, to its own child), or
* by itself, just before its ``crash_at_op``-th file-system change (an open for writing,
  rename, remove, mkdir, rmdir) or the first one whose ``"<event> <path>"`` matches the
  regular expression ``crash_at``; it writes ``kill <n> <event> <path>`` to ``log`` first.

``trace`` writes every change to ``log`` as ``op <n> <event> <path>``. The changes are seen
through Python's audit hooks (PEP 578), which also fire in zarr's writer threads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fewsmap.ingest import ingest
from fewsmap.store.retention import RetentionPolicy, prune

CHANGES = ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def is_change(event: str, args: tuple[Any, ...]) -> bool:
    """Whether an audit event changes the file system."""
    if event == "open":
        path, _, flags = args
        return isinstance(flags, int) and bool(flags & WRITE_FLAGS) and \
            not str(path).endswith(".pyc")
    return event in CHANGES


def run_job(job: dict[str, Any]) -> None:
    """Ingest as ``job`` says, in this (forked) process, killing itself where it says."""
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    crash_at_op = int(job.get("crash_at_op") or 0)
    crash_at = re.compile(job["crash_at"]) if job.get("crash_at") else None
    count = 0

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal count
        if not is_change(event, args):
            return
        count += 1
        change = f"{event} {args[0]}"
        dies = count == crash_at_op or (crash_at is not None and crash_at.search(change))
        if job.get("trace") or dies:  # one write a line: threads must not interleave
            os.write(log, f"{'kill' if dies else 'op'} {count} {change}\n".encode())
        if dies:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)  # in the child only: the parent forks every job unhooked
    store = job["store"]  # a folder or an s3:// URL (tests/store/test_object_store.py)
    if job.get("prune"):
        for _ in range(2):
            prune(store, RetentionPolicy(**job["prune"]), grace_s=0)
    else:
        ingest(store, [Path(p) for p in job["files"]], progress=False)
    os.write(log, b"done\n")


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                run_job(job)
                code = 0
            finally:
                os._exit(code)
        print(f"pid {pid}", flush=True)
        if job.get("kill_after_s") is not None:
            time.sleep(job["kill_after_s"])
            os.kill(pid, signal.SIGKILL)  # our own child: not reaped yet, so never reused
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
