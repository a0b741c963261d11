"""Start the real ``fewsmap serve`` on 127.0.0.1 for end-to-end tests, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(*args: str, env: dict[str, str] | None = None,
                timeout_s: float = 60.0) -> Iterator[str]:
    """Run ``fewsmap serve ARGS --port P`` until the block ends; yield its base URL."""
    port = free_port()
    # One worker unless a test asks for more: one limiter, one catalog, less memory.
    workers = () if "--workers" in args else ("--workers", "1")
    command = [sys.executable, "-m", "fewsmap.cli", "serve", "--port", str(port), *workers,
               *args]
    # Output goes to a file, not a pipe nobody reads while the server runs (a full pipe
    # would block the server's next log line).
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env={**os.environ, **(env or {})},
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            yield wait_until_up(process, f"http://127.0.0.1:{port}", timeout_s, output)
        finally:
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


__all__ = ["Path", "free_port", "live_server", "stores_of"]
