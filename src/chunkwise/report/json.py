"""The machine-readable advise document."""

from __future__ import annotations

from typing import Any

from chunkwise._version import __version__
from chunkwise.plan.advice import Advice
from chunkwise.report.snippets import xarray_snippet, zarr_snippet

__all__ = ["advice_document"]


def advice_document(advice: Advice) -> dict[str, Any]:
    """``advice.to_dict()`` plus the chunkwise version and code snippets per recommendation.

    ``document["recommendations"][0]["layout"]`` is the best layout and
    ``document["recommendations"][0]["predicted"]`` its seconds per operation.
    """
    doc: dict[str, Any] = {"chunkwise_version": __version__, **advice.to_dict()}
    for rec, entry in zip(advice.recommendations, doc["recommendations"], strict=True):
        entry["snippets"] = {
            "zarr": zarr_snippet(advice.array, rec.layout),
            "xarray": xarray_snippet(advice.array, rec.layout),
        }
    return doc
