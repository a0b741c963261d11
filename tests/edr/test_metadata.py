"""The EDR metadata documents follow the EDR 1.1 schemas as KNMI's edr-pydantic models read
them, for every kind of layer (members, levels, projected, curvilinear), and say the same
when read back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edr_pydantic.capabilities import ConformanceModel, LandingPageModel
from edr_pydantic.collections import Collection, Collections, Instance, Instances

from fewsmap.catalog import Catalog
from fewsmap.edr import metadata

ROOT = "http://fewsmap.test"
LAYERS = ("naefs-mean.QPF", "ecmwf-ens-gust.fg10_6", "levels.t", "lambert.lon",
          "curvilinear.lon", "marfc-fmat.t")


def same_when_read_back(document: dict[str, Any], model: Any) -> None:
    """The document validates, and the model writes it back unchanged (no member lost)."""
    read = model.model_validate_json(json.dumps(document))
    assert metadata.dump(read) == document


def test_landing_page_and_conformance() -> None:
    same_when_read_back(metadata.landing_page("fewsmap", ROOT), LandingPageModel)
    same_when_read_back(metadata.conformance(), ConformanceModel)


def test_collections(catalog: Catalog) -> None:
    document = metadata.collections(catalog, ROOT)
    same_when_read_back(document, Collections)
    assert set(LAYERS) <= {c["id"] for c in document["collections"]}


@pytest.mark.parametrize("layer_id", LAYERS)
def test_collection_and_its_instances(catalog: Catalog, layer_id: str) -> None:
    layer = catalog.layer(layer_id)
    collection = metadata.collection(catalog, layer, ROOT)
    same_when_read_back(collection, Collection)
    # EDR spells the member data-type (the model's alias), never the attribute's name.
    assert all(p["data-type"] == "float" and "dataType" not in p
               for p in collection["parameter_names"].values())
    instances = metadata.instances(catalog, layer, ROOT)
    same_when_read_back(instances, Instances)
    assert len(instances["instances"]) == len(catalog.runs(layer))
    newest = catalog.runs(layer)[-1]
    instance = metadata.instance(catalog, layer, newest, ROOT)
    same_when_read_back(instance, Instance)
    assert instance == instances["instances"][0]
    assert instance["extent"]["temporal"]["interval"] == [[
        f"{newest.valid_times[0]}Z", f"{newest.valid_times[-1]}Z"]]
