"""The library bench's reads go through: zarr-python, tensorstore or zarrs.

``bench`` prices the reader a spec names (``reader:``; by default the zarr-python
installed here) and measures the reads through that same reader when it is installed:

* **zarr-python** (every ``zarr-python-*`` preset and custom readers): the array bench
  wrote, through chunkwise's counting :class:`~chunkwise.io.stores.EmulatedStore`.
* **tensorstore**: ``ts.open({"driver": "zarr3" | "zarr", "kvstore": ...})`` on what was
  written. A local directory is read with tensorstore's ``file`` kvstore (requests are
  its ``/tensorstore/kvstore/file/batch_read`` metric: reads after its own batching), a
  zip file with its ``zip`` kvstore over the file, memory is first copied to a temporary
  directory. The emulated remote store is served over HTTP on ``127.0.0.1`` by
  :class:`~chunkwise.io.http_emulation.EmulatedHTTPServer`, with the same link
  costs, and read with tensorstore's ``http`` kvstore; requests are counted there.
* **zarrs** (zarr-python with ``codec_pipeline.path = zarrs.ZarrsCodecPipeline``):
  zarrs only takes over for stores its Rust side can open (a ``LocalStore``, an fsspec
  HTTP store, obstore); for any other store, chunkwise's wrappers included, zarr-python
  silently keeps its own pipeline. So a local directory (or memory, copied to one) is
  read through a plain ``LocalStore``; zarrs reads the files itself, so its requests
  are not counted. Selections zarrs cannot index (most point reads) fall back to
  zarr-python's pipeline; the report says which. The emulated store is not measured
  through zarrs: served over HTTP, zarrs 0.2.3 read through an fsspec HTTP store waits
  forever on some partial-chunk reads (``a[1:2, 0:16]`` of 16^3 chunks) without
  sending a request.

Writes and appends always go through zarr-python. A named reader that is not installed,
or a store it cannot read (S3; zip and the emulated store for zarrs), is measured
through zarr-python with a note that says so.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from chunkwise.io.stores import EmulatedStore, StoreTarget
from chunkwise.model.layout import Layout
from chunkwise.model.workload import Operation

__all__ = [
    "ArrayReads",
    "ReaderChoice",
    "choose_reader",
    "local_reads",
    "open_reads",
    "reader_family",
    "zarr_python_label",
]

#: The reader families bench can measure through, and how to install each.
INSTALL = {"tensorstore": "pip install tensorstore", "zarrs": "pip install zarrs"}

#: The tensorstore metric that counts reads of the file kvstore after its batching.
TS_FILE_READS = "/tensorstore/kvstore/file/batch_read"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def zarr_python_label() -> str:
    """``zarr-python 3.1.6``: the zarr-python installed here."""
    return f"zarr-python {_version('zarr')}"


def reader_family(priced: str) -> str:
    """The library behind a reader profile's name: ``"tensorstore"``, ``"zarrs"`` or
    ``"zarr-python"`` (every ``zarr-python-*`` profile and custom readers)."""
    name = priced.lower()
    for family in INSTALL:
        if name.startswith(family):
            return family
    return "zarr-python"


@dataclass(frozen=True, slots=True)
class ReaderChoice:
    """Which library measures bench's reads.

    Attributes
    ----------
    family
        ``"zarr-python"``, ``"tensorstore"`` or ``"zarrs"``.
    label
        The library and its version, e.g. ``tensorstore 0.1.86``.
    note
        Why the reads are not measured through the priced reader, or ``None``.
    """

    family: str
    label: str
    note: str | None = None


def choose_reader(priced: str, target: StoreTarget) -> ReaderChoice:
    """The library that measures reads for the priced reader ``priced`` on ``target``:
    the priced one when it is installed and can read the target, else zarr-python."""
    family = reader_family(priced)
    if family == "zarr-python":
        return ReaderChoice(family, zarr_python_label())
    fallback = f"bench measures through {zarr_python_label()} instead"
    if find_spec(family) is None:
        return ReaderChoice(
            "zarr-python",
            zarr_python_label(),
            f"The reader {priced} is priced but not installed here ({INSTALL[family]}); "
            f"{fallback}.",
        )
    if target.kind == "s3" or (family == "zarrs" and target.kind == "zip"):
        return ReaderChoice(
            "zarr-python",
            zarr_python_label(),
            f"The reader {priced} is priced but bench cannot measure it on "
            f"{target.kind} stores; {fallback}.",
        )
    if family == "zarrs" and target.emulation is not None:
        return ReaderChoice(
            "zarr-python",
            zarr_python_label(),
            f"The reader {priced} is priced but zarrs can read the emulated store only over "
            f"HTTP, where zarrs {_version('zarrs')} waits forever on some partial-chunk reads; "
            f"{fallback} (zarrs is measured on local directories and memory).",
        )
    if family == "tensorstore":
        return ReaderChoice(family, f"tensorstore {_version('tensorstore')}")
    return ReaderChoice(family, f"zarrs {_version('zarrs')} in {zarr_python_label()}")


@dataclass
class ArrayReads:
    """One written layout, opened for reading by the measuring library.

    Attributes
    ----------
    read
        ``read(op, selection)`` reads one position and returns the values.
    requests
        The store's request count so far (``None`` when the library's requests cannot be
        counted).
    label
        The library that reads, e.g. ``tensorstore 0.1.86``.
    fallbacks
        Operations a library handed back to zarr-python's pipeline (zarrs and points).
    """

    read: Callable[[Operation, Any], Any]
    requests: Callable[[], int] | None
    label: str
    fallbacks: set[str] = field(default_factory=set)


def _zarr_reads(arr: Any, store: EmulatedStore) -> ArrayReads:
    def read(op: Operation, selection: Any) -> Any:
        if op.kind == "point":
            return arr.get_coordinate_selection(selection)
        return arr[selection]

    return ArrayReads(read, lambda: store.counts.gets, zarr_python_label())


def _directory(store: EmulatedStore, stack: contextlib.ExitStack) -> tuple[Path, str]:
    """A local path holding what ``store`` holds, and its kind: ``"dir"`` or ``"zip"``.

    A local directory or zip file is used in place (a zip is closed first, so its
    directory of entries is written); anything else is copied to a temporary directory
    removed when ``stack`` closes.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
    from zarr.storage import LocalStore, ZipStore

    inner = store._store
    if isinstance(inner, LocalStore):
        return Path(inner.root), "dir"
    if isinstance(inner, ZipStore):
        inner.close()
        return Path(inner.path), "zip"
    folder = Path(tempfile.mkdtemp(prefix="chunkwise-reads-"))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)

    async def copy() -> None:
        async for key in inner.list():
            value = await inner.get(key, default_buffer_prototype())
            if value is None:
                continue
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value.to_bytes())

    sync(copy())
    return folder, "dir"


def _server(
    folder: Path, target: StoreTarget, stack: contextlib.ExitStack
) -> Any:  # EmulatedHTTPServer, imported lazily
    from chunkwise.io.http_emulation import EmulatedHTTPServer

    return stack.enter_context(EmulatedHTTPServer(folder, target.emulation))


def _ts_file_reads() -> int:
    import tensorstore as ts

    for metric in ts.experimental_collect_matching_metrics(TS_FILE_READS):
        if metric.get("name") == TS_FILE_READS:
            return int(sum(v.get("value", 0) for v in metric.get("values", [])))
    return 0


def _tensorstore_reads(
    store: EmulatedStore, layout: Layout, target: StoreTarget, label: str,
    stack: contextlib.ExitStack,
) -> ArrayReads:  # fmt: skip
    import tensorstore as ts

    folder, kind = _directory(store, stack)
    requests: Callable[[], int]
    kvstore: dict[str, Any]
    if target.emulation is not None:
        server = _server(folder, target, stack)
        kvstore = {"driver": "http", "base_url": server.base_url}
        requests = lambda: server.counts.gets  # noqa: E731
    elif kind == "zip":
        kvstore = {"driver": "zip", "base": {"driver": "file", "path": str(folder)}}
        requests = _ts_file_reads
    else:
        kvstore = {"driver": "file", "path": str(folder) + "/"}
        requests = _ts_file_reads
    driver = "zarr3" if layout.zarr_format == 3 else "zarr"
    arr = ts.open({"driver": driver, "kvstore": kvstore}, read=True).result()

    def read(op: Operation, selection: Any) -> Any:
        view = arr.vindex[selection] if op.kind == "point" else arr[selection]
        return view.read().result()

    return ArrayReads(read, requests, label)


def _open_zarrs(folder: Path) -> Any:
    """The zarr array in ``folder``, opened with zarrs' codec pipeline (checked: zarr-python
    silently keeps its own for stores zarrs cannot open)."""
    import zarr
    from zarr.storage import LocalStore

    with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
        arr = zarr.open_array(LocalStore(folder, read_only=True), mode="r")
    pipeline: Any = arr._async_array.codec_pipeline
    if getattr(pipeline, "impl", None) is None:
        raise RuntimeError(
            f"zarrs did not take over reading {folder}; zarr-python kept its own codec "
            f"pipeline ({type(pipeline).__name__})."
        )
    return arr


def _zarrs_reads(store: EmulatedStore, label: str, stack: contextlib.ExitStack) -> ArrayReads:
    folder, _ = _directory(store, stack)
    arr = _open_zarrs(folder)
    pipeline: Any = arr._async_array.codec_pipeline
    reads = ArrayReads(lambda op, sel: None, None, label)  # zarrs reads the files itself
    current: list[str] = [""]
    python_impl = getattr(pipeline, "python_impl", None)
    if python_impl is not None:  # see which operations zarrs hands back to zarr-python
        pipeline.python_impl = _Tattle(python_impl, lambda: reads.fallbacks.add(current[0]))

    def read(op: Operation, selection: Any) -> Any:
        current[0] = op.name
        if op.kind == "point":
            return arr.get_coordinate_selection(selection)
        return arr[selection]

    reads.read = read
    return reads


class _Tattle:
    """A codec pipeline that calls ``seen()`` before every read it serves."""

    def __init__(self, pipeline: Any, seen: Callable[[], None]) -> None:
        self._pipeline = pipeline
        self._seen = seen

    async def read(self, *args: Any, **kwargs: Any) -> Any:
        self._seen()
        return await self._pipeline.read(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


def local_reads(family: str, folder: Path, zarr_format: int) -> Callable[[Any], Any]:
    """``read(selection)`` of the array in the local directory ``folder`` through
    ``family``: ``"tensorstore"`` (its ``file`` kvstore) or ``"zarrs"`` (zarr-python with
    the zarrs codec pipeline on a ``LocalStore``), returning the values."""
    if family == "tensorstore":
        import tensorstore as ts

        driver = "zarr3" if zarr_format == 3 else "zarr"
        kvstore = {"driver": "file", "path": str(folder) + "/"}
        arr = ts.open({"driver": driver, "kvstore": kvstore}, read=True).result()
        return lambda selection: arr[selection].read().result()
    if family != "zarrs":
        raise ValueError(f"local_reads reads through tensorstore or zarrs, not {family!r}")
    opened = _open_zarrs(folder)
    return lambda selection: opened[selection]


@contextlib.contextmanager
def open_reads(
    choice: ReaderChoice, arr: Any, store: EmulatedStore, layout: Layout, target: StoreTarget
) -> Iterator[ArrayReads]:
    """The layout written to ``store`` (as zarr-python array ``arr``), opened for reads
    by ``choice``; servers and temporary copies last until the context exits."""
    with contextlib.ExitStack() as stack:
        if choice.family == "tensorstore":
            yield _tensorstore_reads(store, layout, target, choice.label, stack)
        elif choice.family == "zarrs":
            yield _zarrs_reads(store, choice.label, stack)
        else:
            yield _zarr_reads(arr, store)


def same_values(got: Any, expected: np.ndarray[Any, Any]) -> bool:
    """``got`` holds exactly ``expected`` (NaN equal to NaN)."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return False
    if expected.dtype.kind in "fc":
        return bool(np.array_equal(got, expected, equal_nan=True))
    return bool(np.array_equal(got, expected))
