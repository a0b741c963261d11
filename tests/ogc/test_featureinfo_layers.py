"""GetFeatureInfo of a map of several LAYERS: QUERY_LAYERS names some of them (WMS 1.3.0
§7.4.3.4: at least one, possibly fewer than the map drew), and only those are queried.

A layer the map did not draw is refused with LayerNotDefined ("GetFeatureInfo request is
for a Layer not shown on the map", WMS 1.3.0 Table E.1); a group is not queryable
(LayerNotQueryable).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.asgi_client import AppClient

# The cell at 10° E, 45° N of the 1° grid: longitude 10, latitude 45.
QUERY = {"service": "WMS", "version": "1.3.0", "request": "GetFeatureInfo", "crs": "CRS:84",
         "bbox": "9.5,44.5,10.5,45.5", "width": "1", "height": "1", "i": "0", "j": "0",
         "info_format": "application/json"}


def values(client: AppClient, **extra: str) -> list[tuple[str, Any]]:
    response = client.get("/wms", params={**QUERY, **extra})
    assert response.status_code == 200, response.text
    return [(f["properties"]["layer"], f["properties"]["value"])
            for f in response.json()["features"]]


def refusal(client: AppClient, **extra: str) -> str:
    response = client.get("/wms", params={**QUERY, **extra})
    assert response.status_code == 400, response.text
    return response.text


def test_only_the_queried_layer_of_a_list_is_queried(configured: AppClient) -> None:
    assert values(configured, layers="longitude,latitude",
                  query_layers="latitude") == [("latitude", 45.0)]
    assert values(configured, layers="longitude,latitude",
                  query_layers="longitude") == [("longitude", 10.0)]


def test_several_queried_layers_answer_in_the_order_named(configured: AppClient) -> None:
    assert values(configured, layers="longitude,latitude",
                  query_layers="latitude,longitude") == [("latitude", 45.0),
                                                         ("longitude", 10.0)]


def test_a_layer_of_a_group_in_the_list_is_queryable(configured: AppClient) -> None:
    assert values(configured, layers="latitude,coordinates",
                  query_layers="longitude") == [("longitude", 10.0)]


def test_each_entry_is_checked_with_its_style(configured: AppClient) -> None:
    assert values(configured, layers="longitude,latitude", styles="bands,",
                  query_layers="longitude") == [("longitude", 10.0)]
    assert "StyleNotDefined" in refusal(configured, layers="longitude,latitude",
                                        styles=",bands", query_layers="longitude")


@pytest.mark.parametrize(("layers", "query_layers", "code"), [
    ("longitude,longitude", "latitude", "LayerNotDefined"),  # not shown on the map
    ("longitude,latitude", "coordinates", "LayerNotQueryable"),  # a group
    ("longitude,nowhere", "longitude", "LayerNotDefined"),
    ("longitude,", "longitude", "InvalidParameterValue"),
])
def test_a_query_layer_outside_the_list_is_refused(configured: AppClient, layers: str,
                                                   query_layers: str, code: str) -> None:
    assert code in refusal(configured, layers=layers, query_layers=query_layers)
