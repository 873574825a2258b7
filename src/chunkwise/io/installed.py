"""Which reader is installed here: the zarr-python line and the codec pipeline it runs.

The cost model prices the reader the user runs. Unless a spec or ``--reader`` names
another, that is the reader chunkwise itself runs with: zarr-python 3.1 on Python 3.11,
zarr-python 3.4 on Python >= 3.12, and the zarrs codec pipeline when zarr-python is
configured to use it.
"""

from __future__ import annotations

import functools
import os
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["calibration_cache", "installed_reader", "zarr_version"]

#: The codec pipeline class zarrs-python registers with zarr-python.
ZARRS_PIPELINE = "zarrs.ZarrsCodecPipeline"


@functools.cache
def zarr_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed zarr-python, read without importing it (once:
    every spec parse asks)."""
    text = metadata.version("zarr")
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in text.split(".")[:2]]
    return parts[0], parts[1] if len(parts) > 1 else 0


def _codec_pipeline() -> str:
    """The codec pipeline zarr-python is configured with (``codec_pipeline.path``)."""
    zarr = sys.modules.get("zarr")
    if zarr is not None:  # configured in this process: zarr.config.set(...)
        return str(zarr.config.get("codec_pipeline.path", ""))
    return os.environ.get("ZARR_CODEC_PIPELINE__PATH", "")


def installed_reader() -> str:
    """The reader preset of the zarr-python installed and configured here.

    ``"zarrs"`` when zarr-python runs the zarrs codec pipeline; otherwise
    ``"zarr-python-3.1"`` for zarr-python 3.1 and ``"zarr-python-3.4"`` for 3.2 and
    later (3.2 writes whole shards without reading them, 3.3 merges inner-chunk reads;
    3.4 is the newest line the model describes).
    """
    if _codec_pipeline() == ZARRS_PIPELINE:
        return "zarrs"
    return "zarr-python-3.1" if zarr_version() < (3, 2) else "zarr-python-3.4"


def calibration_cache(reader: str) -> Path:
    """Where ``chunkwise calibrate`` keeps the profile of ``reader`` on this machine:
    ``$XDG_CACHE_HOME/chunkwise/`` (``~/.cache/chunkwise/``), one file per reader."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "chunkwise" / f"calibration-{reader}.yaml"
