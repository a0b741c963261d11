"""Media types the fronts answer (one spelling each)."""

from __future__ import annotations

JSON = "application/json"
COVJSON = "application/prs.coverage+json"  # CoverageJSON (OGC 21-069r2 §9)
CSV = "text/csv"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
