"""Pieces of the OpenAPI documents of the JSON fronts (``/edr/api``, ``/api/openapi.json``):
query parameters, schema references and content, written one way for both."""

from __future__ import annotations

from typing import Any

from fewsmap.formats.media import JSON


def query_parameter(name: str, required: bool, description: str, schema: dict[str, Any],
                    example: object = None, **extra: object) -> dict[str, Any]:
    """A query parameter object; ``extra`` adds members such as ``style`` and ``explode``."""
    found = {"name": name, "in": "query", "required": required, "description": description,
             "schema": schema, **extra}
    if example is not None:
        found["example"] = example
    return found


def schema_ref(name: str) -> dict[str, str]:
    """A reference to a schema of the document's components."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """The content of a JSON answer with ``schema``."""
    return {JSON: {"schema": schema}}
