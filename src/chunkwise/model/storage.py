"""Where the array lives and who reads it: latency, bandwidth, concurrency, prices.

A :class:`StorageProfile` describes the store (per-request latency, bandwidth,
useful concurrency, filesystem block size, prices) and carries the
:class:`ReaderProfile` of the library issuing the requests, because the same store
costs differently through zarr-python 3.1 (requests in waves of
``async.concurrency``; a partial shard read fetches the index and then each inner
chunk one after another) and through tensorstore (inner chunks fetched concurrently).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chunkwise.errors import SpecError

__all__ = [
    "READER_PRESETS",
    "STORAGE_PRESETS",
    "ReaderProfile",
    "StorageProfile",
]

KiB = 2**10
MiB = 2**20
GiB = 2**30
_MB = 1e6


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    """How a Zarr implementation issues requests and spends CPU.

    Parameters
    ----------
    name
        ``"zarr-python"`` or ``"tensorstore"`` (or a custom name).
    concurrency
        Requests in flight at once (zarr-python's ``async.concurrency``, default 10).
    per_chunk_cpu_s
        Interpreter/library CPU per chunk processed, seconds, serial (zarr-python 3.1.6:
        ~0.2 ms; ~0.1 ms with ``codec_pipeline.batch_size=64``; tensorstore ~0.03 ms).
    sequential_inner_reads
        ``True`` when a partial shard read fetches its inner chunks one after another
        (zarr-python 3.1); ``False`` when they go out concurrently (tensorstore).
    threads
        Cores available for decoding/encoding in parallel.
    serial_checksum
        ``True`` when crc32c checksums run on one thread, one chunk after another:
        zarr-python 3.1 computes its ``crc32c`` codec on the event-loop thread, while
        compressors go to worker threads (``asyncio.to_thread``). ``False`` when checksums
        share the decode threads (tensorstore).
    """

    name: str
    concurrency: int
    per_chunk_cpu_s: float
    sequential_inner_reads: bool
    threads: int = 4
    serial_checksum: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.threads < 1:
            raise SpecError(f"reader {self.name!r}: concurrency and threads must be at least 1.")
        if self.per_chunk_cpu_s < 0:
            raise SpecError(f"reader {self.name!r}: per-chunk CPU time must not be negative.")


READER_PRESETS: dict[str, ReaderProfile] = {
    "zarr-python": ReaderProfile("zarr-python", 10, 0.2e-3, True, serial_checksum=True),
    "zarr-python-batched": ReaderProfile(
        "zarr-python-batched", 10, 0.1e-3, True, serial_checksum=True
    ),
    "tensorstore": ReaderProfile("tensorstore", 32, 0.03e-3, False),
}


@dataclass(frozen=True, slots=True)
class StorageProfile:
    """The cost of talking to a store.

    Parameters
    ----------
    name
        Preset name or ``"custom"``.
    kind
        ``"filesystem"`` or ``"object"`` (object stores bill requests and bytes).
    latency_s
        Time to first byte of one request, seconds.
    bandwidth_Bps
        Aggregate bandwidth over all requests in flight, bytes/second.
    stream_bandwidth_Bps
        Bandwidth of a single request, bytes/second (<= ``bandwidth_Bps``).
    concurrency
        Requests the store serves in parallel without slowing each down.
    block_bytes
        Filesystem allocation unit; every object's size is rounded up to it (0: none).
    object_bytes_min, object_bytes_max
        The range of object (chunk or shard) sizes this storage handles efficiently,
        raw bytes; a default constraint that the user may override.
    get_usd_per_1000, put_usd_per_1000
        Request prices, US dollars per 1000 requests.
    storage_usd_per_gb_month
        Storage price, US dollars per GB (1e9 bytes) per month.
    reader
        The library issuing the requests.
    """

    name: str
    kind: Literal["filesystem", "object"]
    latency_s: float
    bandwidth_Bps: float
    stream_bandwidth_Bps: float
    concurrency: int
    block_bytes: int
    object_bytes_min: int
    object_bytes_max: int
    get_usd_per_1000: float = 0.0
    put_usd_per_1000: float = 0.0
    storage_usd_per_gb_month: float = 0.0
    reader: ReaderProfile = READER_PRESETS["zarr-python"]

    def __post_init__(self) -> None:
        if self.latency_s < 0:
            raise SpecError(f"storage latency {self.latency_s!r} s must not be negative.")
        if self.bandwidth_Bps <= 0 or self.stream_bandwidth_Bps <= 0:
            raise SpecError("storage bandwidth must be positive; write it like '200MB/s'.")
        if self.concurrency < 1:
            raise SpecError(f"storage concurrency {self.concurrency!r} must be at least 1.")
        if self.object_bytes_min > self.object_bytes_max:
            raise SpecError(
                f"storage object size range [{self.object_bytes_min}, {self.object_bytes_max}] bytes is empty; "
                "the minimum must not exceed the maximum."
            )

    @property
    def effective_concurrency(self) -> int:
        """Requests actually in flight: the smaller of what the reader sends and the store serves."""
        return min(self.reader.concurrency, self.concurrency)

    def with_reader(self, reader: ReaderProfile) -> StorageProfile:
        """The same storage read through another library."""
        return replace(self, reader=reader)


def _object_store(
    name: str, latency_s: float, get: float, put: float, gb_month: float
) -> StorageProfile:
    return StorageProfile(
        name=name,
        kind="object",
        latency_s=latency_s,
        bandwidth_Bps=1000 * _MB,
        stream_bandwidth_Bps=90 * _MB,
        concurrency=256,
        block_bytes=0,
        object_bytes_min=1 * MiB,
        object_bytes_max=512 * MiB,
        get_usd_per_1000=get,
        put_usd_per_1000=put,
        storage_usd_per_gb_month=gb_month,
    )


STORAGE_PRESETS: dict[str, StorageProfile] = {
    # NVMe/SATA SSD through a local filesystem: the open/read syscalls dominate latency.
    "local-ssd": StorageProfile(
        "local-ssd", "filesystem", 0.1e-3, 2000 * _MB, 1500 * _MB, 64, 4 * KiB, 16 * KiB, 2 * GiB
    ),
    # Spinning disk: every file is a seek.
    "local-hdd": StorageProfile(
        "local-hdd", "filesystem", 8e-3, 160 * _MB, 160 * _MB, 2, 4 * KiB, 1 * MiB, 2 * GiB
    ),
    # Parallel filesystem (Lustre/GPFS): metadata round trips, large allocation blocks, inode quotas.
    "hpc": StorageProfile(
        "hpc", "filesystem", 2e-3, 3000 * _MB, 800 * _MB, 32, 64 * KiB, 1 * MiB, 2 * GiB
    ),
    # Cloud object stores, list prices of the standard/hot tier in one region.
    "s3": _object_store("s3", 20e-3, 0.0004, 0.005, 0.023),
    "gcs": _object_store("gcs", 30e-3, 0.0004, 0.005, 0.020),
    "azure": _object_store("azure", 25e-3, 0.0004, 0.0065, 0.018),
    # A static HTTP server seen from a browser or laptop: six connections per host.
    "http": StorageProfile("http", "object", 50e-3, 100 * _MB, 40 * _MB, 6, 0, 256 * KiB, 64 * MiB),
}
