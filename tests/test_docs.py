"""The documentation site builds without a broken link, and its examples work as written.

Every example URL of the README and ``docs/`` is requested from the app on the demo stores,
every Python example runs against a real ``fewsmap serve``, the TOML example configures a
service, and every command-line flag the examples use exists: the docs cannot drift from
the code unnoticed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from fewsmap.app.server import create_app
from fewsmap.cli import main
from fewsmap.settings import Settings, config_schema, load_settings
from tests.asgi_client import AppClient

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
# Design notes sketch code for other setups (a dask-gateway cluster): their links and URLs
# are checked, their code is not run.
USER_PAGES = [page for page in PAGES if "design" not in page.relative_to(ROOT).parts]
EXAMPLE_HOST = "http://127.0.0.1:8080"


def fenced_blocks(language: str) -> list[tuple[Path, str]]:
    """Return the ```language blocks of the user pages, with the page they are on."""
    pattern = re.compile(rf"^( *)```{language}\n(.*?)^\1```", re.M | re.S)
    blocks = []
    for page in USER_PAGES:
        for match in pattern.finditer(page.read_text()):
            indent = len(match.group(1))
            code = "\n".join(line[indent:] for line in match.group(2).splitlines())
            blocks.append((page, code))
    return blocks


def example_urls() -> list[str]:
    """Return the service URLs the pages link to (``<http://127.0.0.1:8080/…>``)."""
    urls = {url for page in PAGES
            for url in re.findall(rf"<({re.escape(EXAMPLE_HOST)}[^>\s]*)>", page.read_text())}
    return sorted(urls)


def test_the_site_builds_without_a_broken_link_or_anchor(tmp_path: Path) -> None:
    # strict: a link to a missing page or anchor, or a page left out of the nav, fails
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "wms" / "index.html").is_file()


def test_the_readme_links_only_to_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links into docs/"
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_the_readme_stays_a_landing_page() -> None:
    assert len((ROOT / "README.md").read_text()) < 6000


@pytest.mark.parametrize("url", example_urls())
def test_every_example_url_answers(url: str, demo_stores: Path) -> None:
    client = AppClient(create_app(Settings(stores_dir=demo_stores)))
    response = client.get(url.removeprefix(EXAMPLE_HOST))
    assert response.status_code == 200, response.text[:500]
    assert b"ServiceException" not in response.content


def test_there_are_example_urls_on_most_pages() -> None:
    pages_with_urls = {page.name for page in PAGES
                       if f"<{EXAMPLE_HOST}" in page.read_text()}
    assert {"README.md", "getting-started.md", "edr.md", "raw-data.md"} <= pages_with_urls


@pytest.mark.parametrize("page, code", fenced_blocks("python"),
                         ids=lambda v: v.name if isinstance(v, Path) else "")
def test_every_python_example_runs(page: Path, code: str, served_stores: tuple[Path, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stores, url = served_stores
    monkeypatch.setenv("FEWSMAP_STORES_DIR", str(stores))
    # the examples name the service and the stores folder as `make serve` runs them
    code = code.replace(EXAMPLE_HOST, url).replace('"stores/', f'"{stores}/')
    exec(compile(code, str(page), "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("page, toml", fenced_blocks("toml"),
                         ids=lambda v: v.name if isinstance(v, Path) else "")
def test_every_configuration_example_configures_a_service(page: Path, toml: str,
                                                          demo_stores: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWSMAP_TOKEN_OPS", "a-token-from-the-environment")  # token_env
    config = tmp_path / "fewsmap.toml"
    config.write_text(toml)
    settings = load_settings(config, environ={"FEWSMAP_STORES_DIR": str(demo_stores)})
    client = AppClient(create_app(settings))
    capabilities = client.get("/wms", params={"request": "GetCapabilities",
                                              "format": "application/json"})
    assert capabilities.status_code == 200, capabilities.text[:500]
    for layer in tomllib.loads(toml).get("layers", []):
        assert layer["id"] in capabilities.text


@pytest.mark.parametrize("page, toml", fenced_blocks("toml"),
                         ids=lambda v: v.name if isinstance(v, Path) else "")
def test_every_configuration_example_fits_the_published_schema(page: Path, toml: str) -> None:
    """What `fewsmap config-schema` gives editors accepts every example (no false alarm)."""
    validator = jsonschema.Draft202012Validator(config_schema())
    assert [e.message for e in validator.iter_errors(tomllib.loads(toml))] == []


def cli_examples() -> list[tuple[str, str]]:
    """Return (subcommand, flag) for every flag a shell example gives ``fewsmap``."""
    used = set()
    for _, code in fenced_blocks("sh"):
        command = None
        for line in code.splitlines():
            line = line.split("#")[0]
            match = re.search(r"\bfewsmap (\w+)(.*)", line)
            if match:
                command, line = match.group(1), match.group(2)
            elif not line.startswith(" "):  # an indented line continues the command above
                command = None
            if command:
                used |= {(command, flag)
                         for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line)}
    return sorted(used)


@pytest.mark.parametrize("command, flag", cli_examples())
def test_every_command_line_flag_of_the_examples_exists(command: str, flag: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert flag in capsys.readouterr().out
