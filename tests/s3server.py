"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1, as s3fs's suite runs.

The server is a separate process speaking the S3 REST protocol over HTTP (conditional writes
included); fewsmap talks to it with its real clients, configured only by the standard AWS
variables (`env`). Nothing of the client is mocked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.live_server import free_port

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """A running S3 server: its endpoint URL and the AWS variables that reach it."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def stop(self) -> None:
        """Stop the server now (an outage): requests to it are refused from then on."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a client (and a `fewsmap` process) needs for it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_bucket(self) -> str:
        """Create an empty bucket with a unique name and return the name."""
        name = f"fewsmap-{uuid.uuid4().hex[:12]}"
        created = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        created.raise_for_status()
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in ``bucket`` under ``prefix`` (ListObjectsV2, all pages)."""
        keys: list[str] = []
        token = None
        while True:
            params = {"list-type": "2", "prefix": prefix,
                      **({"continuation-token": token} if token else {})}
            answer = httpx.get(f"{self.endpoint}/{bucket}", params=params, timeout=10)
            answer.raise_for_status()
            text = answer.text
            keys += [part.split("</Key>")[0] for part in text.split("<Key>")[1:]]
            if "<NextContinuationToken>" not in text:
                return keys
            token = text.split("<NextContinuationToken>")[1].split("<")[0]


@contextmanager
def s3_server(timeout_s: float = 30.0) -> Iterator[S3Server]:
    """Run moto's S3 server on a free loopback port until the block ends."""
    port = free_port()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(process, endpoint, timeout_s)
            yield S3Server(endpoint, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], endpoint: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            httpx.get(endpoint, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto_server did not answer on {endpoint}") from None
            time.sleep(0.1)
