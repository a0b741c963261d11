"""Store locations: local folders, file:// URLs, s3:// and http(s):// object stores; other
URLs refused (fewsmap/store/location.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fewsmap.errors import ConfigError
from fewsmap.settings import load_settings
from fewsmap.store.cube import ForecastStore
from fewsmap.store.location import store_location
from fewsmap.store.retention import RetentionPolicy, prune
from tests.synthetic import lonlat_store


@pytest.mark.parametrize("location", ["stores/x.zarr", "/data/x.zarr", "x.zarr", ".", "C:/x",
                                      "a:b/x.zarr", Path("stores/x.zarr")])
def test_paths_are_local_folders(location: str | Path) -> None:
    assert store_location(location) == Path(location)


@pytest.mark.parametrize(("url", "folder"), [
    ("file:///data/x.zarr", "/data/x.zarr"), ("file://localhost/data/x.zarr", "/data/x.zarr"),
    ("FILE:///data/my%20x.zarr", "/data/my x.zarr"), (Path("file:///data/x.zarr"), "/data/x.zarr"),
])
def test_file_urls_of_this_machine_are_local_folders(url: str | Path, folder: str) -> None:
    assert store_location(url) == Path(folder)


@pytest.mark.parametrize(("url", "location"), [
    ("s3://bucket/x.zarr", "s3://bucket/x.zarr"), ("S3://bucket/p/x.zarr/", "s3://bucket/p/x.zarr"),
    ("s3://bucket/stores/", "s3://bucket/stores"),
    ("https://example.org/x.zarr", "https://example.org/x.zarr"),
    ("http://127.0.0.1:8080/zarr/x", "http://127.0.0.1:8080/zarr/x"),
])
def test_object_store_urls_are_kept_as_urls(url: str, location: str) -> None:
    assert store_location(url) == location


@pytest.mark.parametrize("url", [
    "gs://bucket/x.zarr", "gcs://bucket/x.zarr", "az://c/x.zarr",
    "abfs://c/x.zarr", "file://otherhost/x.zarr", "zip+s3://bucket/x.zip",
    # What a URL becomes once it has been a Path ('//' collapsed): never a folder 's3:'.
    Path("s3://bucket/x.zarr"), Path("https://example.org/x.zarr"),
])
def test_other_urls_are_refused_naming_them(url: str | Path) -> None:
    scheme = str(url).split(":", 1)[0].lower()
    says = rf"--store .*is a URL fewsmap cannot reach \({re.escape(scheme)}://\): stores live"
    with pytest.raises(ConfigError, match=says) as raised:
        store_location(url, "--store")
    assert raised.value.http_status == 400


def test_an_object_store_url_names_its_bucket() -> None:
    with pytest.raises(ConfigError, match="names no bucket"):
        store_location("s3:///x.zarr", "--store")


def test_every_way_into_the_store_layer_refuses_urls(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="FEWSMAP_STORES_DIR: stores_dir: 'gs://b/stores' is a "
                       "URL"):
        load_settings(environ={"FEWSMAP_STORES_DIR": "gs://b/stores"})
    config = tmp_path / "fewsmap.toml"
    config.write_text('[stores.remote]\npath = "gs://b/x.zarr"\n')
    with pytest.raises(ConfigError, match=r"fewsmap.toml: stores.remote.path: 'gs://b/x.zarr' "
                       "is a URL"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="is a URL"):
        lonlat_store(Path("s3://bucket/x.zarr"))  # fewsmap.store.writer.append_run
    with pytest.raises(ConfigError, match="is a URL"):
        prune(Path("s3://bucket/x.zarr"), RetentionPolicy(keep_runs=1))
    with pytest.raises(ConfigError, match="is a URL"):
        ForecastStore(Path("https://example.org/x.zarr"))
    assert list(tmp_path.iterdir()) == [config]
