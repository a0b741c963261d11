"""Reading EDR answers in tests: a query's CoverageJSON and a parameter's range as an array."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.asgi_client import AppClient


def edr_json(client: AppClient, path: str, **params: str) -> dict[str, Any]:
    """The JSON answer of ``/edr/collections/<path>``, which must be a 200."""
    response = client.get(f"/edr/collections/{path}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def edr_grid(body: dict[str, Any], name: str) -> np.ndarray:
    """A parameter's range as float32 of its shape (NaN for null)."""
    found = body["ranges"][name]
    return np.array([np.nan if v is None else v for v in found["values"]],
                    dtype=np.float32).reshape(found["shape"])
