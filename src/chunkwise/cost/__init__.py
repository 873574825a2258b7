"""PURE: the cost model. Expected chunks touched, requests, bytes and seconds per operation."""

from chunkwise.cost.geometry import DimAccess, append_access, dim_access, expected_chunks_touched
from chunkwise.cost.model import (
    CostInputs,
    Footprint,
    Grid,
    LayoutCost,
    OpCost,
    estimate_layout,
    grid_footprint,
    op_cost,
    weighted_seconds,
)

__all__ = [
    "CostInputs",
    "DimAccess",
    "Footprint",
    "Grid",
    "LayoutCost",
    "OpCost",
    "append_access",
    "dim_access",
    "estimate_layout",
    "expected_chunks_touched",
    "grid_footprint",
    "op_cost",
    "weighted_seconds",
]
