"""The ``fewsmap`` command line, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fewsmap import ForecastStore
from tests.conftest import sample_paths


def fewsmap(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fewsmap.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=None if env is None else {**os.environ, **env})


def test_ingest_reports_each_run_and_skips_them_the_second_time(tmp_path: Path) -> None:
    store = tmp_path / "fmat.zarr"
    first = fewsmap("ingest", "--quiet", "--store", store, *sample_paths("fmat"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("written") == 4
    again = fewsmap("ingest", "--quiet", "--store", store, *sample_paths("fmat")[:1])
    assert again.returncode == 0
    assert "2022-06-01T00:00:00Z is already in the store" in again.stdout
    assert "skipped" in again.stdout


def test_a_store_given_by_name_lives_in_the_stores_folder(tmp_path: Path) -> None:
    result = fewsmap("ingest", "--quiet", "--stores", tmp_path, "--store", "gust",
                     *sample_paths("wgust"))
    assert result.returncode == 0, result.stderr
    assert ForecastStore(tmp_path / "gust.zarr").runs


def test_bad_input_exits_non_zero_naming_the_file_and_writes_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "notes.nc"
    junk.write_text("these are not forecasts")
    store = tmp_path / "s.zarr"
    result = fewsmap("ingest", "--store", store, *sample_paths("fmat"), junk)
    assert result.returncode == 2
    assert f"{junk}: not a NetCDF or GRIB file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists()


def test_missing_values_come_from_the_configuration_and_the_command_line(
        tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text("[stores.fmat]\nmissing_values = { t = 1.0 }\n")
    files = sample_paths("fmat")[:1]
    configured = fewsmap("ingest", "--quiet", "--config", config, "--store",
                         tmp_path / "a" / "fmat.zarr", *files)
    assert configured.returncode == 0, configured.stderr
    [run] = ForecastStore(tmp_path / "a" / "fmat.zarr").runs
    assert run.record["missing_values"] == {"t": 1.0}
    given = fewsmap("ingest", "--quiet", "--config", config, "--missing-value", "t=233.16",
                    "--store", tmp_path / "b" / "fmat.zarr", *files)
    assert given.returncode == 0, given.stderr
    [run] = ForecastStore(tmp_path / "b" / "fmat.zarr").runs
    assert run.record["missing_values"] == {"t": 233.16}  # the command line wins
    assert run.statistics["t"]["min"] > 260  # the area outside MARFC's is no longer -40 °C
    listed = fewsmap("runs", tmp_path / "b" / "fmat.zarr")
    assert "t: 233.16 read as missing" in listed.stdout
    bad = fewsmap("ingest", "--missing-value", "t=cold", "--store", tmp_path / "c.zarr", *files)
    assert bad.returncode == 2 and "expected VARIABLE=NUMBER" in bad.stderr
    config.write_text('[stores.fmat]\nmissing_values = { t = "cold" }\n')
    bad = fewsmap("ingest", "--config", config, "--store", tmp_path / "d" / "fmat.zarr", *files)
    assert bad.returncode == 2
    assert f"{config}: stores.fmat.missing_values.t: must be a number, not 'cold'" in bad.stderr
    assert not (tmp_path / "d").exists()


def test_the_series_copy_is_a_choice_of_the_store_in_the_configuration(
        tmp_path: Path) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text("[stores.fmat]\nseries_copy = false\n")
    files = sample_paths("fmat")[:1]
    without = fewsmap("ingest", "--quiet", "--config", config, "--store",
                      tmp_path / "a" / "fmat.zarr", *files)
    assert without.returncode == 0, without.stderr
    [run] = ForecastStore(tmp_path / "a" / "fmat.zarr").runs
    assert "series" not in run.record
    with_copy = fewsmap("ingest", "--quiet", "--store", tmp_path / "b" / "fmat.zarr", *files)
    assert with_copy.returncode == 0, with_copy.stderr
    [run] = ForecastStore(tmp_path / "b" / "fmat.zarr").runs
    assert run.record["series"] == ["t"]  # the default: a copy
    config.write_text('[stores.fmat]\nseries_copy = "no"\n')
    bad = fewsmap("ingest", "--config", config, "--store", tmp_path / "c" / "fmat.zarr", *files)
    assert bad.returncode == 2 and "stores.fmat.series_copy" in bad.stderr
    assert not (tmp_path / "c").exists()


def test_missing_file_is_reported(tmp_path: Path) -> None:
    result = fewsmap("ingest", "--store", tmp_path / "s.zarr", tmp_path / "missing.grib")
    assert result.returncode == 2
    assert "missing.grib: no such file or folder" in result.stderr


def test_reference_time_option_for_files_without_one(tmp_path: Path) -> None:
    store = tmp_path / "arome.zarr"
    result = fewsmap("ingest", "--quiet", "--store", store, "--reference-time",
                     "2016-01-13T18:00:00Z", *sample_paths("arome"))
    assert result.returncode == 0, result.stderr
    run = ForecastStore(store).runs[0]
    assert run.label == "2016-01-13T18:00:00Z"
    assert run.record["reference_time_from"] == "--reference-time"
    assert [str(t) for t in run.valid_times] == [
        "2016-01-14T00:00:00", "2016-01-14T01:00:00", "2016-01-14T02:00:00"]


def test_bad_reference_time_is_a_usage_error(tmp_path: Path) -> None:
    result = fewsmap("ingest", "--store", tmp_path / "s.zarr", "--reference-time", "soon",
                     *sample_paths("arome"))
    assert result.returncode == 2
    assert "not an ISO 8601 time: 'soon'" in result.stderr


def test_runs_lists_runs_with_their_sources(tmp_path: Path) -> None:
    store = tmp_path / "fmat.zarr"
    fewsmap("ingest", "--quiet", "--store", store, *sample_paths("fmat")[:2])
    result = fewsmap("runs", store)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2022-06-01T00:00:00Z  1 valid times 2022-06-01T12:00:00Z")
    assert "FMAT12hr_20220601.00z.grb  sha256 a77e1751bcca0568" in lines[1]


def refused(result: subprocess.CompletedProcess[str], url: str, folder: Path) -> None:
    """The command named the URL and wrote nothing in ``folder`` (its working folder)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    scheme = url.split(":", 1)[0]
    assert f"{url!r} is a URL fewsmap cannot reach ({scheme}://)" in result.stderr, \
        result.stderr
    assert "local folders" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["config.toml"]


def test_store_urls_are_refused_by_every_command_writing_nothing(tmp_path: Path) -> None:
    # Issue #13 item 15: `ingest --store s3://bucket/x.zarr` exited 0 and wrote `./s3:/…`;
    # since #14 s3:// and http(s):// are object stores (tests/store/test_object_store.py).
    # Each way of naming a store location, each with another scheme (tests/store/
    # test_location.py holds the rest of the schemes).
    config = tmp_path / "config.toml"
    config.write_text('[stores]\nremote = "gs://bucket/x.zarr"\n')
    file = sample_paths("fmat")[0]
    cases: list[tuple[str, list[str | Path], dict[str, str] | None]] = [
        ("gcs://bucket/x.zarr", ["ingest", "--quiet", "--store", "gcs://bucket/x.zarr", file],
         None),
        ("az://container/x.zarr", ["prune", "--keep-runs", "1", "--store",
                                   "az://container/x.zarr"], None),
        ("abfs://c/x.zarr", ["runs", "abfs://c/x.zarr"], None),
        ("ftp://example.org/stores", ["ingest", "--quiet", "--stores",
                                      "ftp://example.org/stores", "--store", "x", file],
         None),
        ("gs://bucket/x.zarr", ["ingest", "--quiet", "--config", config, "--store", "remote",
                                file], None),
        ("gs://bucket/stores", ["ingest", "--quiet", "--store", "x", file],
         {"FEWSMAP_STORES_DIR": "gs://bucket/stores"}),
        # serve would build the demo stores into a folder it cannot serve, then listen.
        ("gs://bucket/stores", ["serve", "--stores", "gs://bucket/stores"], None),
        ("gs://bucket/x.zarr", ["serve", "--config", config], None),
        ("file://elsewhere/stores", ["demo"], {"FEWSMAP_STORES_DIR": "file://elsewhere/stores"}),
    ]
    for url, args, env in cases:
        refused(fewsmap(*args, cwd=tmp_path, env=env, timeout=60), url, tmp_path)


def test_file_urls_name_local_folders(tmp_path: Path) -> None:
    store = tmp_path / "stores" / "fmat.zarr"
    result = fewsmap("ingest", "--quiet", "--store", store.as_uri(), *sample_paths("fmat")[:1],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ForecastStore(store).runs
    listed = fewsmap("runs", f"file://localhost{store}")
    assert listed.returncode == 0 and "2022-06-01T00:00:00Z" in listed.stdout


@pytest.mark.parametrize("args", [["--version"], ["serve", "--help"], ["ingest", "--help"]])
def test_help_and_version(args: list[str]) -> None:
    result = fewsmap(*args)
    assert result.returncode == 0
    assert "fewsmap" in result.stdout


def test_config_schema_lets_an_editor_check_a_configuration(tmp_path: Path) -> None:
    result = fewsmap("config-schema")
    assert result.returncode == 0, result.stderr
    validator = jsonschema.Draft202012Validator(json.loads(result.stdout))
    assert not list(validator.iter_errors({"service": {"port": 8080},
                                           "stores": {"feed": {"keep_runs": 3}}}))
    assert [e.message for e in validator.iter_errors({"service": {"prot": 8080}})] == [
        "Additional properties are not allowed ('prot' was unexpected)"]


@pytest.mark.parametrize(("toml", "says"), [
    ('[[layers]]\nid = "rain"\nstore = "s"\nvariable = "v"\nstyle = ["a"]\n',
     "layers.rain.style: unknown key; did you mean 'styles'?"),
    ('[[styles]]\nid = "rain"\nbreaks = [2, 1]\ncolors = ["#fff", "#000"]\n',
     "styles.rain: style 'rain': class breaks must ascend"),
])
def test_a_bad_configuration_stops_serve_naming_the_file_and_key(tmp_path: Path, toml: str,
                                                                 says: str) -> None:
    config = tmp_path / "fewsmap.toml"
    config.write_text(toml)
    result = fewsmap("serve", "--config", config, "--stores", tmp_path, "--port", "0")
    assert result.returncode == 2
    assert result.stderr == f"fewsmap: error: {config}: {says}\n"
