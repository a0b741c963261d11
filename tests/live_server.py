"""Start the real ``fewsmap serve`` on 127.0.0.1 for end-to-end tests, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    process = subprocess.Popen(command, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"fewsmap serve exited {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewsmap serve did not answer on {url}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout:
            process.stdout.close()


def stores_of(url: str) -> dict[str, dict[str, object]]:
    """The stores a running service reports on /health, by name."""
    return {s["name"]: s for s in httpx.get(f"{url}/health", timeout=10).json()["stores"]}


__all__ = ["Path", "free_port", "live_server", "stores_of"]
