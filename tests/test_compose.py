"""compose.yaml's services, run as local processes with the commands and variables it gives.

There is no Docker daemon here, so the image is not built; what is checked is that the
services' commands and environment work together: a dask scheduler, two workers, two
`fewsmap serve` on one s3:// store, and the ingest client writing through the workers.
Host names become 127.0.0.1 with free ports, the S3 server (MinIO in the file) is moto's,
and ``/inputs`` is the folder the file mounts there (``./tests/data``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.live_server import free_port, stop, wait_until_up
from tests.s3server import s3_server

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def services() -> dict[str, dict[str, Any]]:
    """The compose file's services, anchors and merge keys resolved."""
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])


def local(command: list[str], ports: dict[str, int]) -> list[str]:
    """A service's command for this machine: its programs from this environment, host
    names and ports mapped, the mounted inputs where they are here."""
    out = []
    for word in command:
        for host, port in ports.items():
            word = word.replace(f"{host}:8786", f"127.0.0.1:{port}")
        word = word.replace("/inputs", str(ROOT / "tests" / "data"))
        out.append(word)
    program = shutil.which(out[0], path=str(BIN)) or out[0]
    return [program, *out[1:]]


@contextmanager
def running(command: list[str], env: dict[str, str],
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            stop(process)


def with_port(command: list[str], port: int) -> list[str]:
    """``--port N`` (and ``--host``) of a server command set for this machine."""
    out = list(command)
    out[out.index("--port") + 1] = str(port)
    if "--host" in out:
        out[out.index("--host") + 1] = "127.0.0.1"
    return out


@pytest.mark.slow
def test_the_compose_services_ingest_through_the_workers_and_both_servers_serve(
        tmp_path: Path) -> None:
    spec = services()
    assert {"s3", "bucket", "scheduler", "worker-1", "worker-2", "serve-1", "serve-2",
            "ingest"} <= set(spec)
    with s3_server() as storage, ExitStack() as stack:
        bucket = "forecasts"
        assert f"s3/{bucket}" in " ".join(spec["bucket"]["command"])
        httpx.put(f"{storage.endpoint}/{bucket}", timeout=10).raise_for_status()

        def env_of(name: str) -> dict[str, str]:
            env = {k: str(v) for k, v in (spec[name].get("environment") or {}).items()}
            assert env["AWS_ENDPOINT_URL"] == "http://s3:9000"
            return {**env, "AWS_ENDPOINT_URL": storage.endpoint,
                    "FEWSMAP_OBJECT_RELOAD_INTERVAL_S": "1"}

        ports = {"scheduler": free_port()}
        scheduler = with_port(local(spec["scheduler"]["command"], ports), ports["scheduler"])
        stack.enter_context(running(scheduler, env_of("scheduler"), tmp_path / "scheduler.log"))
        for name in ("worker-1", "worker-2"):
            stack.enter_context(running(local(spec[name]["command"], ports), env_of(name),
                                        tmp_path / f"{name}.log"))
        servers = []
        for name in ("serve-1", "serve-2"):
            port = free_port()
            command = [*with_port(local(spec[name]["command"], ports), port), "--workers", "1"]
            process = stack.enter_context(running(command, env_of(name),
                                                  tmp_path / f"{name}.log"))
            with (tmp_path / f"{name}.log").open("rb") as log:
                servers.append(wait_until_up(process, f"http://127.0.0.1:{port}", 60, log))

        # `docker compose run --rm ingest /inputs/t_n48.grib`: the service, other inputs
        ingest = local(spec["ingest"]["command"], ports)
        ingest = [*ingest[:-1], str(ROOT / "tests" / "data" / "t_n48.grib")]
        done = subprocess.run(ingest, env={**os.environ, **env_of("ingest")},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "written" in done.stdout

        deadline = time.monotonic() + 30
        seen: set[str] = set()
        while len(seen) < 2 and time.monotonic() < deadline:
            for url in servers:
                stores = httpx.get(f"{url}/health", timeout=10).json()["stores"]
                if any(s["name"] == "gefs" and s["runs"] == 1 for s in stores):
                    seen.add(url)
            time.sleep(0.2)
        assert seen == set(servers), "a server did not see the run ingested by the workers"
        logs = "".join((tmp_path / f"{w}.log").read_text() for w in ("worker-1", "worker-2"))
        assert "Traceback" not in logs
