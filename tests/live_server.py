"""Start the real ``fewsmap serve`` on 127.0.0.1 for end-to-end tests, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

# The process and output file of each running server, by base URL (memory, logs).
RUNNING: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0,
                program: Sequence[str] = (sys.executable, "-m", "fewsmap.cli")) -> Iterator[str]:
    """Run ``fewsmap serve ARGS --port P`` until the block ends; yield its base URL.
    ``program`` is the ``fewsmap`` to run (by default this checkout's, with this Python)."""
    port = free_port()
    # One worker unless a test asks for more: one limiter, one catalog, less memory.
    workers = () if "--workers" in args else ("--workers", "1")
    command = [*program, "serve", "--port", str(port), *workers, *args]
    # Output goes to a file, not a pipe nobody reads while the server runs (a full pipe
    # would block the server's next log line).
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env={**os.environ, **(env or {})},
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        RUNNING[url] = (process, output)
        try:
            yield wait_until_up(process, url, timeout_s, output)
        finally:
            del RUNNING[url]
            stop(process)


def wait_until_up(process: subprocess.Popen[bytes], url: str, timeout_s: float,
                  output: IO[bytes]) -> str:
    """Wait for ``/health`` to answer; raise with the server's output if it exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output.seek(0)
            raise RuntimeError(f"fewsmap serve exited {process.returncode}:\n"
                               f"{output.read().decode(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewsmap serve did not answer on {url}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group; SIGKILL it if it has not ended in 10 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def stores_of(url: str) -> dict[str, dict[str, object]]:
    """The stores a running service reports on /health, by name."""
    return {s["name"]: s for s in httpx.get(f"{url}/health", timeout=10).json()["stores"]}


def server_rss_mb(url: str) -> float:
    """Resident memory of the (single-worker) server at ``url``, from /proc."""
    pid = RUNNING[url][0].pid
    status = Path(f"/proc/{pid}/status").read_text()
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kb) / 1024


def server_page_faults(url: str) -> int:
    """Minor page faults the (single-worker) server at ``url`` has taken, from /proc."""
    pid = RUNNING[url][0].pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])  # minflt: the 10th field of stat, 8th after the command name


def open_connections(url: str) -> int:
    """Connections the server at ``url`` holds open (its side ESTABLISHED or CLOSE_WAIT), from
    /proc/net/tcp: a connection the server has closed no longer counts."""
    port = f"{int(url.rsplit(':', 1)[1]):04X}"
    held = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if local.endswith(":" + port) and state in ("01", "08"):
            held += 1
    return held


def server_log(url: str) -> str:
    """What the server at ``url`` has written to stdout and stderr so far."""
    output = RUNNING[url][1]
    output.flush()
    return Path(f"/proc/self/fd/{output.fileno()}").read_bytes().decode(errors="replace")


__all__ = ["Path", "free_port", "live_server", "stores_of"]
