"""Where the array lives and who reads it: latency, bandwidth, concurrency, prices.

A :class:`StorageProfile` describes the store (per-request latency, bandwidth,
useful concurrency, filesystem block size, prices) and carries the
:class:`ReaderProfile` of the library issuing the requests, because the same store
costs differently through each reader:

* zarr-python 3.1 sends requests in waves of ``async.concurrency``; a partial shard
  read fetches the index and then each inner chunk one after another; every shard
  write first reads the shard;
* zarr-python 3.4 fetches a partial shard's inner chunks concurrently, merged into
  ranged requests (gaps up to ``sharding_coalesce_max_gap_bytes``, 1 MiB, merged reads
  up to ``sharding_coalesce_max_bytes``, 16 MiB), and writes a whole shard without
  reading it first;
* tensorstore and zarrs (the Rust codec pipeline for zarr-python) fetch inner chunks
  concurrently and spend far less CPU per chunk.

Bandwidths follow one convention everywhere: ``bandwidth`` is the aggregate over all
requests in flight, ``stream_bandwidth`` the rate of one request.

Storage presets carry no preferred object size: object size, object count, requests
and dollars are priced by the cost model and bounded only by constraints the user
states. ``object_bytes_max`` is the store's hard technical limit (an S3 single PUT is
at most 5 GiB), not advice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chunkwise.errors import SpecError

__all__ = [
    "GCS_REQUEST_LIMIT",
    "NO_OBJECT_LIMIT",
    "READER_ALIASES",
    "READER_PRESETS",
    "S3_REQUEST_LIMIT",
    "SCHEME_STORAGE",
    "STORAGE_PRESETS",
    "ReaderProfile",
    "RequestRateLimit",
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
        A preset name (``"zarr-python-3.1"``, ``"zarr-python-3.4"``, ``"tensorstore"``,
        ``"zarrs"``) or a custom name.
    concurrency
        Requests in flight at once (zarr-python's ``async.concurrency``, default 10).
    per_chunk_cpu_s
        Interpreter/library CPU per chunk processed, seconds, serial (zarr-python 3.1.6:
        ~0.2 ms; ~0.1 ms with ``codec_pipeline.batch_size=64``; tensorstore ~0.013 ms;
        zarrs ~0.044 ms: ``benchmarks/bench_reader_constants.py``).
    sequential_inner_reads
        ``True`` when a partial shard read fetches its inner chunks one after another
        (zarr-python 3.1); ``False`` when they go out concurrently (zarr-python 3.4,
        tensorstore, zarrs).
    threads
        Cores available for decoding/encoding in parallel.
    serial_checksum
        ``True`` when crc32c checksums run on one thread, one chunk after another:
        zarr-python 3.1 computes its ``crc32c`` codec on the event-loop thread, while
        compressors go to worker threads (``asyncio.to_thread``). ``False`` when checksums
        share the decode threads (tensorstore).
    coalesce_gap_bytes, coalesce_max_bytes
        Concurrent readers that merge a shard's inner-chunk reads: two byte ranges at
        most ``coalesce_gap_bytes`` apart become one request, of at most
        ``coalesce_max_bytes`` (zarr-python 3.4: 1 MiB and 16 MiB). ``0``: no merging.
    shard_write_reads_existing
        ``True`` when every shard write first GETs the existing shard (zarr-python 3.1);
        ``False`` when a write that covers the whole shard skips that read (zarr-python
        3.2 and later, tensorstore, zarrs).
    per_call_s
        Fixed time of one read or write call beyond its chunks and requests, seconds:
        argument checks, indexing plans, event-loop round trips, assembling the result.
        The presets carry ``benchmarks/bench_reader_constants.py``'s medians from one
        2-core machine (both zarr lines); ``chunkwise calibrate`` measures this machine's, and ``bench
        --save-profile`` fits it to measured operations.
    per_request_s
        Time per request the reader (and, on an emulated link, the local server) spends
        one request after another, seconds: building, sending and parsing it. ``0`` in the
        presets (a real object store answers on its own machines); ``bench
        --save-profile`` fits it to measured operations.
    """

    name: str
    concurrency: int
    per_chunk_cpu_s: float
    sequential_inner_reads: bool
    threads: int = 4
    serial_checksum: bool = False
    coalesce_gap_bytes: int = 0
    coalesce_max_bytes: int = 0
    shard_write_reads_existing: bool = True
    per_call_s: float = 0.0
    per_request_s: float = 0.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.threads < 1:
            raise SpecError(f"reader {self.name!r}: concurrency and threads must be at least 1.")
        if min(self.per_chunk_cpu_s, self.per_call_s, self.per_request_s) < 0:
            raise SpecError(
                f"reader {self.name!r}: times per chunk, per call and per request must not "
                "be negative."
            )
        if self.coalesce_gap_bytes < 0 or self.coalesce_max_bytes < 0:
            raise SpecError(f"reader {self.name!r}: coalescing sizes must not be negative.")


#: Fixed time per read call, medians on zarr-python 3.1 / 3.4
#: (benchmarks/bench_reader_constants.py): zarr-python 0.28 / 0.30 ms, tensorstore
#: 0.12 / 0.10 ms, zarrs 0.40 / 0.40 ms.
_ZARR_PER_CALL = 0.3e-3
_ZARR_31 = ReaderProfile(
    "zarr-python-3.1", 10, 0.2e-3, True, serial_checksum=True, per_call_s=_ZARR_PER_CALL
)

READER_PRESETS: dict[str, ReaderProfile] = {
    # zarr-python 3.1.6, the last release for Python 3.11.
    "zarr-python-3.1": _ZARR_31,
    # The same with ``codec_pipeline.batch_size=64``.
    "zarr-python-3.1-batched": replace(
        _ZARR_31, name="zarr-python-3.1-batched", per_chunk_cpu_s=0.1e-3
    ),
    # zarr-python 3.4 (Python >= 3.12): partial shard reads are the index, then the
    # inner chunks in concurrent, merged ranged requests (``get_ranges``, 3.3); whole
    # shards are written without a prior read (3.2); crc32c still runs in the event loop.
    # CPU per chunk: as zarr-python 3.1's (benchmarks/bench_reader_model.py, chunkwise
    # calibrate's measurement on one machine: 0.186-0.199 ms against 0.187 ms); run chunkwise
    # calibrate for this machine's own figure.
    "zarr-python-3.4": ReaderProfile(
        "zarr-python-3.4", 10, 0.2e-3, False, serial_checksum=True,
        coalesce_gap_bytes=1 * MiB, coalesce_max_bytes=16 * MiB,
        shard_write_reads_existing=False, per_call_s=_ZARR_PER_CALL,
    ),
    # tensorstore: inner chunks concurrently; its remote kvstores merge byte ranges at
    # most 4095 bytes apart into reads of at most 128 MiB (its source). CPU per chunk
    # 0.012 / 0.015 ms (medians, bench_reader_constants.py on the two zarr lines).
    "tensorstore": ReaderProfile(
        "tensorstore", 32, 0.013e-3, False, coalesce_gap_bytes=4095,
        coalesce_max_bytes=128 * MiB, shard_write_reads_existing=False, per_call_s=0.1e-3,
    ),
    # zarrs-python: zarr-python's API with the zarrs Rust crate as codec pipeline; inner
    # chunks are fetched and decoded concurrently in Rust. CPU per chunk 0.044 / 0.043 ms
    # (medians, bench_reader_constants.py on the two zarr lines); each call still passes
    # through zarr-python's indexing (0.40 ms).
    "zarrs": ReaderProfile(
        "zarrs", 32, 0.044e-3, False, shard_write_reads_existing=False,
        per_call_s=0.4e-3,
    ),
}  # fmt: skip

#: Names that stand for a preset. ``zarr-python`` (and ``zarr``) mean the zarr-python
#: line installed here; the specification layer resolves them (see
#: :func:`chunkwise.io.installed.installed_reader`).
READER_ALIASES: dict[str, str] = {
    "zarr-python-batched": "zarr-python-3.1-batched",
    "zarr-python-3.1.6": "zarr-python-3.1",
    "zarr-python-3.2": "zarr-python-3.4",
    "zarr-python-3.3": "zarr-python-3.4",
    "tensorstore-python": "tensorstore",
    "zarrs-python": "zarrs",
}

#: ``object_bytes_max`` of a store without a size limit.
NO_OBJECT_LIMIT = 2**62

#: URL scheme -> the storage preset a place with that scheme is assumed to be (when no
#: storage is given: inspect, a rechunk's estimate).
SCHEME_STORAGE: dict[str, str] = {
    "s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
    "abfss": "azure", "http": "http", "https": "http",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RequestRateLimit:
    """The request rate an object store serves on one key range before it throttles.

    Parameters
    ----------
    get_per_s
        GET/HEAD (read) requests per second the store serves on one ``scope``.
    put_per_s
        PUT/COPY/POST/DELETE (write) requests per second on one ``scope``.
    scope
        What the limit applies to, in words (``"partitioned prefix"``).
    throttled
        What the store does above the limit, as a clause for messages.
    source
        Where the provider documents the numbers (a URL).
    """

    get_per_s: float
    put_per_s: float
    scope: str
    throttled: str
    source: str

    def __post_init__(self) -> None:
        if not (self.get_per_s > 0 and self.put_per_s > 0):
            raise SpecError("request rate limits must be positive requests per second.")


#: Amazon S3: "at least 3,500 PUT/COPY/POST/DELETE or 5,500 GET/HEAD requests per second
#: per partitioned Amazon S3 prefix"; above that, while S3 scales a prefix out, it answers
#: HTTP 503 Slow Down (S3 User Guide, "Best practices design patterns: optimizing Amazon S3
#: performance"). The keys of one Zarr array share a prefix until S3 partitions it.
S3_REQUEST_LIMIT = RequestRateLimit(
    get_per_s=5500.0,
    put_per_s=3500.0,
    scope="partitioned prefix",
    throttled="S3 answers 503 Slow Down until it has repartitioned the prefix, which takes "
    "minutes, and the run slows down or fails once retries run out",
    source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
)
#: Google Cloud Storage: a bucket's "initial IO capacity" is about 1,000 object writes and
#: 5,000 object reads per second; it scales up as the load grows, doubling at most every 20
#: minutes, with higher latency and error rates meanwhile ("Request rate and access
#: distribution guidelines").
GCS_REQUEST_LIMIT = RequestRateLimit(
    get_per_s=5000.0,
    put_per_s=1000.0,
    scope="bucket, at first",
    throttled="Cloud Storage answers slower and with 429/503 errors until it has spread the "
    "bucket's load over more servers (it doubles its capacity at most every 20 minutes)",
    source="https://cloud.google.com/storage/docs/request-rate",
)


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
        The object (chunk or shard) sizes this storage can hold at all, raw bytes: hard
        technical limits (0 and :data:`NO_OBJECT_LIMIT` when it has none), never a
        preference. Preferences are the user's ``object_bytes`` constraint.
    get_usd_per_1000, put_usd_per_1000
        Request prices, US dollars per 1000 requests.
    storage_usd_per_gb_month
        Storage price, US dollars per GB (1e9 bytes) per month.
    reader
        The library issuing the requests. A profile built directly keeps zarr-python
        3.1's; specs, presets and stores chunkwise opens get the reader installed here
        (:func:`chunkwise.spec.parse_storage`).
    request_limit
        The request rate the store serves on one key prefix before it throttles
        (:data:`S3_REQUEST_LIMIT`), or ``None`` when it states none.
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
    reader: ReaderProfile = READER_PRESETS["zarr-python-3.1"]
    request_limit: RequestRateLimit | None = None

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
    name: str,
    latency_s: float,
    get: float,
    put: float,
    gb_month: float,
    limit: RequestRateLimit | None = None,
) -> StorageProfile:
    return StorageProfile(
        name=name,
        kind="object",
        latency_s=latency_s,
        bandwidth_Bps=1000 * _MB,
        stream_bandwidth_Bps=90 * _MB,
        concurrency=256,
        block_bytes=0,
        object_bytes_min=0,
        # One PUT holds at most 5 GiB on S3 (zarr writes every object in one PUT).
        object_bytes_max=5 * GiB,
        get_usd_per_1000=get,
        put_usd_per_1000=put,
        storage_usd_per_gb_month=gb_month,
        request_limit=limit,
    )


STORAGE_PRESETS: dict[str, StorageProfile] = {
    # NVMe/SATA SSD through a local filesystem: the open/read syscalls dominate latency.
    "local-ssd": StorageProfile(
        "local-ssd", "filesystem", 0.1e-3, 2000 * _MB, 1500 * _MB, 64, 4 * KiB, 0, NO_OBJECT_LIMIT
    ),
    # Spinning disk: every file is a seek.
    "local-hdd": StorageProfile(
        "local-hdd", "filesystem", 8e-3, 160 * _MB, 160 * _MB, 2, 4 * KiB, 0, NO_OBJECT_LIMIT
    ),
    # Parallel filesystem (Lustre/GPFS): metadata round trips, large allocation blocks, inode quotas.
    "hpc": StorageProfile(
        "hpc", "filesystem", 2e-3, 3000 * _MB, 800 * _MB, 32, 64 * KiB, 0, NO_OBJECT_LIMIT
    ),
    # Cloud object stores, list prices of the standard/hot tier in one region.
    "s3": _object_store("s3", 20e-3, 0.0004, 0.005, 0.023, S3_REQUEST_LIMIT),
    "gcs": _object_store("gcs", 30e-3, 0.0004, 0.005, 0.020, GCS_REQUEST_LIMIT),
    "azure": _object_store("azure", 25e-3, 0.0004, 0.0065, 0.018),
    # A static HTTP server seen from a browser or laptop: six connections per host.
    "http": StorageProfile("http", "object", 50e-3, 100 * _MB, 40 * _MB, 6, 0, 0, NO_OBJECT_LIMIT),
}
