"""Catalog: stores, layers, layer groups and styles."""

from fewsmap.catalog.catalog import Catalog
from fewsmap.catalog.layers import Layer, LayerGroup
from fewsmap.catalog.styles import Style

__all__ = ["Catalog", "Layer", "LayerGroup", "Style"]
