"""The benchmark suite's smoke mode: every path once on tiny data, against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` from the checkout; fail with its output unless it succeeds."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


@pytest.mark.slow
def test_the_smoke_suite_measures_every_case_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_benchmark("benchmarks.suite", "--smoke",
                  "--cache", str(tmp_path / "cache"), "--out", str(out), timeout=120)

    results = json.loads((out / "suite-smoke.json").read_text())
    assert (out / "suite-smoke.png").read_bytes().startswith(b"\x89PNG")
    loads = results["loads"]
    fewsmap = [e for e in loads if e["server"].startswith("fewsmap")]
    getmaps = [e for e in fewsmap if e["case"].startswith("GetMap")]
    assert len(getmaps) == 8  # tiles and maps, eu and large, two concurrencies each
    for entry in fewsmap:
        if not entry.get("skipped"):
            assert entry["n"] > 0 and entry["errors"] == 0, entry
            assert entry["median_ms"] > 0 and entry["client_cpu_ms_per_req"] >= 0
    cases = {e["case"] for e in fewsmap}
    assert any(c.startswith("GetCapabilities XML") for c in cases)
    assert any(c.startswith("GetCapabilities JSON") for c in cases)
    assert "GetLegendGraphic PNG" in cases
    floors = [e for e in loads if e["server"].startswith("floor")]
    assert {e["case"] for e in floors} == {e["case"] for e in getmaps}
    assert all(s.get("stages_median_ms") or s.get("error") for s in results["stages"])
    assert results["ratios"] and "median_vs_floor" in results["ratios"][0]
    assert results["meta"]["machine"]["cores"] >= 1


@pytest.mark.slow
def test_the_ingest_scaling_quick_mode_ingests_serially_and_on_each_cluster(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_benchmark("benchmarks.ingest_scaling", "--quick", "--workers", "1",
                  "2", "--cache", str(tmp_path / "cache"), "--out", str(out))

    results = json.loads((out / "ingest_scaling-quick.json").read_text())
    assert [row["workers"] for row in results["rows"]] == [0, 1, 2]
    assert all(row["seconds"] > 0 and row["mb_per_s"] > 0 for row in results["rows"])
    assert results["rows"][0]["vs_serial"] == 1.0 and results["rows"][1]["vs_one_worker"] == 1.0
    assert results["run"]["files"] == 3 and results["machine"]["cores"] >= 1
    table = (out / "ingest_scaling-quick.md").read_text()
    assert "| dask, 2 workers |" in table and f"**{results['machine']['cores']} cores**" in table


@pytest.mark.slow
def test_the_object_store_benchmark_compares_s3_with_local_disk(tmp_path: Path) -> None:
    run_benchmark("benchmarks.object_store", "--quick",
                  "--cache", str(tmp_path / "cache"), "--out", str(tmp_path))
    figures = json.loads((tmp_path / "object_store_quick.json").read_text())
    assert set(figures["warm_median_ms"]) == {"local", "s3"}
    assert all(v > 0 for v in figures["warm_median_ms"].values())
    assert figures["ratio_warm_s3_over_local"] > 0
    assert [t["servers"] for t in figures["throughput"]] == [1, 2]
    assert all(t["requests"] > 0 and t["errors"] == 0 for t in figures["throughput"])
    assert "S3 / local" in (tmp_path / "object_store_quick.md").read_text()


def test_object_publish_quick_run_measures_both_methods_on_a_real_s3_server(
        tmp_path: Path) -> None:
    run_benchmark("benchmarks.object_publish", "--quick", "--out",
                  str(tmp_path))

    results = json.loads((tmp_path / "object_publish-quick.json").read_text())
    assert "| publish |" in (tmp_path / "object_publish-quick.md").read_text()
    assert [c["case"]["name"] for c in results["cases"]] == ["grid", "points"]
    for case in results["cases"]:
        for method in ("conditional", "icechunk"):
            timings = case[method]
            assert timings["publish"]["median_ms"] > 0 and timings["open"]["median_ms"] > 0
            assert any(key.startswith("read slice cold") for key in timings)
            assert case["requests"][method]["publish"]["PUT"] > 0
            assert case["requests"][method]["open"]["GET"] > 0
        assert case["fewsmap writer"]["requests"]["PUT"] > 0
        clients = case["plain_clients"]
        assert clients["conditional"]["xarray.open_zarr over plain HTTP"] == "reads"
        assert clients["icechunk"]["xarray.open_zarr over plain HTTP"].startswith("no")
        assert clients["icechunk"]["xarray.open_zarr + icechunk"] == "reads"
        race = case["race"]
        assert race["conditional"]["second lease refused"]
        assert race["conditional"]["stale publish refused"]
        assert race["conditional"]["both runs intact"]
        assert race["icechunk"]["stale commit refused"]
        assert race["icechunk"]["both runs intact"]
        assert not race["conditional, slot not reserved"]["published run intact"]


@pytest.mark.slow
def test_the_ingest_throughput_quick_run_compares_ingest_with_to_zarr(tmp_path: Path) -> None:
    run_benchmark("benchmarks.ingest_throughput", "--quick",
                  "--cache", str(tmp_path / "cache"), "--out", str(tmp_path))
    results = json.loads((tmp_path / "ingest_throughput-quick.json").read_text())
    for writer in ("fewsmap", "floor"):
        assert results["best"][writer]["seconds"] > 0
        assert results["best"][writer]["max_rss_mb"] > 50  # a Python process with numpy
        assert results["store_mb"][writer] > 0
    assert results["ratio_vs_floor"] > 0
    assert "fewsmap / floor throughput" in (tmp_path / "ingest_throughput-quick.md").read_text()


def test_the_ensemble_quick_run_times_statistic_tiles_against_one_member() -> None:
    done = run_benchmark("benchmarks.ensemble", "--quick")
    assert "| render z5 |" in done.stdout
    worst = float(done.stdout.split("worst ratio of mean/above/below to one member: ")[1]
                  .split("x")[0])
    assert worst > 1  # a statistic reads every member: never cheaper than one


def test_the_catchments_quick_run_times_means_against_reading_the_window() -> None:
    done = run_benchmark("benchmarks.catchments", "--quick")
    assert "| means |" in done.stdout and "| api one |" in done.stdout
    found = done.stdout.split("means of 100 catchments: ")[1]
    assert float(found.split(" ms")[0]) > 0
    assert float(found.split("(")[1].split("x")[0]) > 0  # the ratio to the read floor


@pytest.mark.slow
def test_the_operational_quick_run_loads_both_scenarios_and_names_the_peer(
        tmp_path: Path) -> None:
    run_benchmark("benchmarks.suite.operational", "--quick", "--out", str(tmp_path),
                  timeout=300)
    found = json.loads((tmp_path / "operational-quick.json").read_text())
    assert set(found["scenarios"]) == {"big", "ens"}
    for row in found["scenarios"].values():
        for server in ("fewsmap", "mapserver"):
            if server not in row:  # MapServer not installed: said, not measured
                continue
            loads = row[server]
            assert set(loads) == {"tiles_c8", "tiles_c1", "maps_c1"}, row
            assert all(part["n"] > 0 and part["errors"] == 0 for part in loads.values()), row
        if "mapserver" in row:  # installed: measured in the same run, as a ratio
            assert row["ratio"] > 0, row
    assert found["mapserver"].startswith(("MapServer", "not run"))
    summary = (tmp_path / "operational-quick.md").read_text()
    for target in ("tiles/s at c=8 ≥ 3× MapServer", "tile p95 ≤ 2× median",
                   "1920 × 1200 map of the domain ≤ 60 ms"):
        assert f"| big (200 × 150, Europe) | {target}" in summary
        assert f"| ens (72 × 36, 3 members, global) | {target}" in summary


@pytest.mark.slow
def test_the_projected_quick_run_compares_each_grid_kind_with_a_regular_grid(
        tmp_path: Path) -> None:
    run_benchmark("benchmarks.projected", "--quick", "--out", str(tmp_path))
    figures = json.loads((tmp_path / "projected_quick.json").read_text())
    for clock in ("cpu", "wall"):
        ratios = figures["ratio_to_regular"][clock]
        assert set(ratios) == {"lambert", "polar_stereographic", "rotated_pole", "curvilinear"}
        assert all(r > 0 for kind in ratios.values() for r in kind.values())
        assert figures["worst_ratio"][clock] == max(
            max(kind.values()) for kind in ratios.values())
    assert "| lambert |" in (tmp_path / "projected_quick.md").read_text()
