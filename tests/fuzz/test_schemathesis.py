"""The JSON APIs against their own OpenAPI descriptions, fuzzed by schemathesis over HTTP:
no 5xx, documented status codes and content types, answers matching their schemas.

Half the cases name a real layer (and run), so that the answers with data are checked too,
not only the refusals of names schemathesis makes up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

from tests.fuzz.conftest import budget, figures
from tests.fuzz.strategies import Names
from tests.live_server import live_server


@pytest.fixture(scope="module")
def service(demo_stores: Path) -> Iterator[str]:
    with live_server("--stores", str(demo_stores)) as url:
        yield url


def with_real_names(case: Case, layer: str, run: str) -> Case:
    """Name a real layer, run and point wherever the operation takes one."""
    if case.query is not None and "layer" in case.query:
        case.query.update(layer=layer, x=-90.0, y=40.0)  # inside the NAEFS and ECMWF grids
    if case.path_parameters:
        case.path_parameters.update(
            {k: layer for k in case.path_parameters if k == "collectionId"}
            | {k: run for k in case.path_parameters if k == "instanceId"})
    return case


@pytest.mark.parametrize("document", ["/api/openapi.json", "/edr/api"])
def test_json_apis_keep_their_contract(service: str, document: str, fuzz_names: Names) -> None:
    schema = schemathesis.openapi.from_url(f"{service}{document}")
    counts = figures(f"schemathesis ({document})")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    demo = [name for name in fuzz_names.layers if not name.startswith("grid.")]
    for operation in operations:
        label = operation.label
        named = st.tuples(operation.as_strategy(), st.sampled_from(demo),
                          st.sampled_from(fuzz_names.times)).map(lambda t: with_real_names(*t))
        cases = st.one_of(operation.as_strategy(), named)

        @settings(max_examples=max(30, budget() // 100), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def check(case: Case) -> None:
            # A schema-valid request may still name a layer or point that does not exist.
            response = case.call_and_validate(base_url=service,
                                              excluded_checks=[positive_data_acceptance])
            counts.count(label, response.status_code)  # noqa: B023 (called right away)

        check()
