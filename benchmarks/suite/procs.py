"""Processes the suite starts: launch, wait until they answer, measure, stop by pid.

Only processes started here are ever signalled, each by its own pid (a server's
descendants, e.g. fewsmap's forked workers or lighttpd's mapserv FastCGI children, are
recorded by pid and start time while running and stopped one by one if they outlive their
parent). Nothing is looked up by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): with the pid, its identity."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class ProcessTree:
    """A started process and its descendants (recorded as they are seen)."""

    def __init__(self, process: subprocess.Popen[bytes], name: str) -> None:
        self.process = process
        self.name = name
        self.known: dict[int, int | None] = {process.pid: start_ticks(process.pid)}

    def pids(self) -> list[int]:
        """The live tree now (and remember every descendant seen)."""
        out, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for child in children(pid):
                self.known.setdefault(child, start_ticks(child))
                todo.append(child)
        return out

    def cpu_seconds(self) -> float:
        """user + system CPU seconds of the live tree."""
        total = 0
        for pid in self.pids():
            fields = _stat(pid)
            if fields:
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def rss_mb(self) -> float:
        """Resident memory of the live tree, MB."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process, then any recorded descendant still alive (same pid and start
        time, so never a recycled pid); SIGKILL what does not stop in time."""
        self.pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        for pid, ticks in self.known.items():
            if pid == self.process.pid or ticks is None:
                continue
            deadline = time.monotonic() + timeout_s
            sent = False
            while start_ticks(pid) == ticks and time.monotonic() < deadline:
                if not sent:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                    sent = True
                time.sleep(0.05)
            if start_ticks(pid) == ticks:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def launch(command: list[str], name: str, log: Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> ProcessTree:
    """Start ``command`` with its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=cwd, start_new_session=True)
    return ProcessTree(process, name)


def wait_until(ready: Callable[[], bool], tree: ProcessTree, timeout_s: float,
               log: Path) -> None:
    """Poll ``ready`` until true; raise with the log's tail if the process dies or time
    runs out (the process is then stopped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if tree.process.poll() is not None:
            raise RuntimeError(f"{tree.name} exited with {tree.process.returncode}:\n"
                               f"{_tail(log)}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tree.stop()
            raise RuntimeError(f"{tree.name} did not answer within {timeout_s:.0f} s:\n"
                               f"{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def settle(tree: ProcessTree, window_s: float = 0.5, idle_share: float = 0.05,
           max_s: float = 60.0) -> float:
    """Wait until the tree is idle (below ``idle_share`` of a core over ``window_s``), e.g.
    after a background JIT warm-up; at most ``max_s``. Returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < max_s:
        before = tree.cpu_seconds()
        time.sleep(window_s)
        if tree.cpu_seconds() - before <= idle_share * window_s:
            break
    return time.monotonic() - start
