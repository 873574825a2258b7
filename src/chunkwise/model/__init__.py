"""The pure planning model: frozen, validated values. No I/O, no zarr import."""

from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec, parse_codec
from chunkwise.model.constraints import ByteRange, Constraints
from chunkwise.model.layout import Layout
from chunkwise.model.storage import STORAGE_PRESETS, ReaderProfile, StorageProfile
from chunkwise.model.workload import Operation, Workload

__all__ = [
    "STORAGE_PRESETS",
    "ArraySpec",
    "ByteRange",
    "CodecProfile",
    "CodecSpec",
    "Constraints",
    "Layout",
    "Operation",
    "ReaderProfile",
    "StorageProfile",
    "Workload",
    "parse_codec",
]
