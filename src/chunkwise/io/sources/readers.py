"""Open any supported source and present its arrays uniformly and lazily.

:func:`open_source` takes what a user gives ``chunkwise rechunk`` / ``convert`` and returns
a :class:`Source`: its arrays (:class:`SourceArray`), its groups and how to describe it.
Each array's ``data`` is an :class:`ArrayReader`: ``reader[box]`` reads a box of slices
into a new NumPy array. Readers hold file names, not open handles, across pickling (a
Dask worker re-opens the file on its first read) and are safe to read from many threads.
Nothing is ever opened for writing.

================================================  =========================================
``a.npy``                                          ``npy``: one array, memory-mapped
``run.h5``, ``.hdf5``, ``.he5``, ``.hdf``          ``hdf5``: every dataset (h5py); as NetCDF
                                                   when the file follows CF
``t.nc``, ``.nc4``, ``.netcdf``                    ``netcdf``: NetCDF-3 and NetCDF-4 variables,
                                                   raw, with their CF attributes (xarray)
``s.tif``, ``.tiff``; ``stack/``, ``stack/*.tif``  ``tiff``: the file's first series; or one
                                                   plane per file of a folder or pattern
``t.mrc``, ``.mrcs``, ``.rec``, ``.map``,          ``mrc``: the volume, memory-mapped
``.st``, ``.ali``
anything else: a folder, ``.zip``, ``s3://...``   ``zarr``: an array or a group (v2 or v3)
================================================  =========================================

``file.h5#group/dataset`` and ``store.zarr#group/array`` select a sub-path (split at the
last ``#``). Files without chunks (NumPy, MRC, contiguous HDF5 datasets) are read in
blocks of whole trailing dimensions of about :data:`READ_BLOCK_BYTES`.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import itertools
import math
import os
import re
import threading
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np

from chunkwise.errors import MissingDependencyError, SpecError, StoreError
from chunkwise.units import format_shape

__all__ = [
    "READ_BLOCK_BYTES",
    "ArrayReader",
    "Source",
    "SourceArray",
    "SourceGroup",
    "json_value",
    "open_source",
    "with_dims",
]

#: Target size of one read block of a source without chunks, bytes.
READ_BLOCK_BYTES = 16 * 2**20

#: What libhdf5 holds during a run besides the values read, bytes: the open file's metadata
#: cache, each read's chunk cache (1 MiB by default), type-conversion and background
#: buffers (1 MiB each) and decompressed chunks (benchmarks/bench_rechunk_projection.py,
#: "HDF5" cases).
H5_LIBRARY_BYTES = 8 * 2**20

#: File name suffix -> source kind; everything else is read as Zarr.
SUFFIX_KINDS: dict[str, str] = {
    ".npy": "npy",
    **dict.fromkeys((".h5", ".hdf5", ".he5", ".hdf"), "hdf5"),
    **dict.fromkeys((".nc", ".nc4", ".netcdf"), "netcdf"),
    **dict.fromkeys((".tif", ".tiff"), "tiff"),
    **dict.fromkeys((".mrc", ".mrcs", ".rec", ".map", ".st", ".ali"), "mrc"),
}

#: The pip extra that installs each optional reader package.
EXTRAS: dict[str, str] = {
    "h5py": "hdf5",
    "xarray": "hdf5",
    "h5netcdf": "hdf5",
    "tifffile": "tiff",
    "mrcfile": "mrc",
    "s3fs": "s3",
}


#: HDF5 / NetCDF-4 bookkeeping attributes; never user attributes.
_INTERNAL_ATTRS = frozenset(
    {
        "DIMENSION_LIST",
        "REFERENCE_LIST",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        "_NCProperties",
        "_nc3_strict",
        "_FillValue",
    }
)
#: Attributes a dimension scale carries (its class and its dimension's name).
_SCALE_ATTRS = frozenset({"CLASS", "NAME"})
_NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"

_TIFF_AXES = "XYZTCS"  # tifffile axis letters with an obvious lower-case name
_MRC_KINDS = {".mrcs": "image stack", ".st": "tilt series", ".ali": "tilt series"}


class ArrayReader(Protocol):
    """A lazily read array: ``reader[box]`` returns a new NumPy array."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    @property
    def ndim(self) -> int: ...

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]: ...


@dataclass(frozen=True)
class SourceArray:
    """One array of a source.

    Attributes
    ----------
    path
        ``"/"``-separated path inside the source tree; ``""`` when the source is one array.
    data
        Reads boxes of the array (picklable, thread-safe).
    shape, dtype
        The array's shape (elements) and data type.
    chunks
        Read granularity, elements per dimension: the source's chunks, one TIFF page, or
        a block of about :data:`READ_BLOCK_BYTES` of whole trailing dimensions.
    dims
        Dimension names when the source has them, else ``None``.
    attributes
        JSON-serializable user attributes.
    fill_value
        A Python scalar, or ``None`` when the source defines none.
    zarr_array
        The ``zarr.Array`` when the source is Zarr (keeps its codecs), else ``None``.
    flexible
        Any box reads at about the same cost per byte (uncompressed, contiguous data: a
        memory-mapped file or a contiguous HDF5 dataset), so a copy need not align its
        reads to ``chunks``.
    read_span_bytes
        Most bytes a read maps besides the values it returns (memory-mapped files).
    library_bytes
        Bytes the reading library holds for the whole run (HDF5's caches and buffers).
    read_working_bytes
        Bytes one read holds besides the values it returns, at most (a pyramid level's
        reads of the level below and their downsampling scratch).
    """

    path: str
    data: ArrayReader
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    dims: tuple[str, ...] | None
    attributes: dict[str, Any]
    fill_value: Any
    zarr_array: Any = None
    flexible: bool = False
    read_span_bytes: int = 0
    library_bytes: int = 0
    read_working_bytes: int = 0


@dataclass(frozen=True)
class SourceGroup:
    """One group of a source tree; ``path`` is ``""`` for the root."""

    path: str
    attributes: dict[str, Any]


@dataclass
class Source:
    """An opened source: its arrays, its groups, and the handles to release.

    Attributes
    ----------
    url
        The source as the user gave it.
    kind
        ``"zarr"``, ``"npy"``, ``"hdf5"``, ``"netcdf"``, ``"tiff"`` or ``"mrc"``.
    description
        One line for people, e.g. ``"HDF5 file run.h5 (2 datasets)"``.
    arrays
        The arrays to convert, sorted by path.
    groups
        Every group including the root ``""`` when ``is_group``; empty otherwise.
    is_group
        The source (after any ``#path``) is a group or file that may hold several arrays,
        so the target is a group.
    zarr_format
        The Zarr source's format, ``None`` for other kinds.
    skipped
        Paths of datasets that cannot be converted (strings, objects, compound types),
        left out of ``arrays``.
    levels
        Paths of arrays that are levels of one image, whose dims have other sizes in each
        (an OME-Zarr pyramid being written).
    """

    url: str
    kind: str
    description: str
    arrays: tuple[SourceArray, ...]
    groups: tuple[SourceGroup, ...]
    is_group: bool
    zarr_format: int | None
    skipped: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

    def close(self) -> None:
        """Release open files and remote sessions; calling it again does nothing."""
        closers, self._closers[:] = list(self._closers), []
        for close in closers:
            close()

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_source(
    url: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    skip: Collection[str] = (),
) -> Source:
    """Open a source for reading (see the module docstring for what is supported).

    Parameters
    ----------
    url
        A path, a ``path#inner/path``, a glob of TIFF files or a Zarr URL.
    storage_options
        fsspec options for remote Zarr stores (``endpoint_url``, ``anon``, ...).
    skip
        Paths of HDF5 datasets or NetCDF variables that Zarr cannot store, to leave out
        (``--skip``) instead of refusing the file; they are listed in ``skipped``.

    Returns
    -------
    Source
        Close it (or use it as a context manager) to release its files.

    Raises
    ------
    SpecError
        For a source that does not exist, cannot be read as its kind, has no such
        ``#path`` or holds no convertible array, in one sentence.
    MissingDependencyError
        When the package that reads this kind is not installed.
    """
    text = os.fspath(url)
    try:
        location, inner = _split(text)
        kind = _kind(location)
        if kind != "zarr":
            location = _local_path(text, location, kind)
        if kind in ("hdf5", "netcdf"):  # the kinds that may hold what Zarr cannot store
            opener = _open_hdf5 if kind == "hdf5" else _open_netcdf
            return opener(text, location, inner, {}, skip=frozenset(skip))
        return _OPENERS[kind](text, location, inner, dict(storage_options or {}))
    except OSError as exc:  # a file or folder of the source that cannot be opened
        raise source_io_error(text, exc) from None


def with_dims(source: Source, dims: tuple[str, ...]) -> Source:
    """The source with its one array's dims named (``--dims z,y,x``).

    Raises
    ------
    SpecError
        For a group (whose arrays have their own dims), or a count of names that is not
        the array's number of dims.
    """
    if source.is_group or len(source.arrays) != 1:
        raise SpecError(
            f"--dims names the dims of one array, but {source.url!r} is a group of "
            f"{len(source.arrays)} arrays; pick one with SOURCE#path, or drop --dims."
        )
    (array,) = source.arrays
    if len(dims) != len(array.shape) or len(set(dims)) != len(dims) or not all(dims):
        raise SpecError(
            f"--dims {','.join(dims)} must give {len(array.shape)} different names, one per dim "
            f"of the {format_shape(array.shape, empty='scalar')} array."
        )
    return replace(source, arrays=(replace(array, dims=dims),))


def source_io_error(url: str, exc: OSError) -> StoreError:
    """One sentence for a source that cannot be read: denied permission, or another
    error of the operating system, naming the file."""
    where = f" ({exc.filename})" if exc.filename else ""
    if isinstance(exc, PermissionError):
        return StoreError(
            f"source {url!r} cannot be read: permission denied{where}; give read access to "
            "it (chmod / chown), or run as a user who has it."
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StoreError(
        f"source {url!r} cannot be read: {reason}{where}; check the path and the disk."
    )


# --- dispatch -------------------------------------------------------------------------


def _split(url: str) -> tuple[str, str]:
    """``"f.h5#g/x"`` -> ``("f.h5", "g/x")``; a local name that contains ``#`` stays whole."""
    if "#" not in url or ("://" not in url and Path(url).expanduser().exists()):
        return url, ""
    location, _, inner = url.rpartition("#")
    return location, inner.strip("/")


def _kind(location: str) -> str:
    path = location.rstrip("/")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix]
    if "://" not in path and _tiff_folder(Path(path).expanduser()):
        return "tiff"
    return "zarr"


def _tiff_folder(path: Path) -> bool:
    """A folder of TIFF files that is not a Zarr store."""
    if not path.is_dir():
        return False
    if any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zarray")):
        return False
    return any(p.suffix.lower() in (".tif", ".tiff") for p in path.iterdir())


def _local_path(url: str, location: str, kind: str) -> str:
    """The local file name of a non-Zarr source (which are read from local files only)."""
    if location.startswith("file://"):
        location = location.removeprefix("file://")
    elif "://" in location:
        raise SpecError(
            f"source {url!r} is a remote {kind} file, which chunkwise reads only from a local "
            "disk; copy it locally first (remote sources must be Zarr)."
        )
    return str(Path(location).expanduser())


def _missing(url: str) -> SpecError:
    return SpecError(
        f"source {url!r} does not exist; check the path (a path inside a file or store "
        "goes after '#', like run.h5#group/dataset)."
    )


def _require(module: str, url: str) -> Any:
    """Import an optional reader package, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"reading {url!r} needs the {module} package; install it with: "
            f"pip install 'chunkwise[{EXTRAS[module]}]'."
        ) from None


def _name(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1] or location


def _extent(shape: Sequence[int], dtype: np.dtype[Any]) -> str:
    return f"{format_shape(shape, empty='scalar')} {dtype.name}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- small pure helpers ---------------------------------------------------------------


def read_block_chunks(shape: Sequence[int], itemsize: int, *, block_bytes: int) -> tuple[int, ...]:
    """Read blocks for an array without chunks: whole trailing dimensions, about
    ``block_bytes`` each.

    Parameters
    ----------
    shape
        The array's shape, elements.
    itemsize
        Bytes per element.
    block_bytes
        Target bytes per block; a block holds at least one index of the leading dimension.

    Returns
    -------
    tuple of int
        Elements per dimension (each at least 1, as Zarr requires).
    """
    if not shape:
        return ()
    trailing = [max(n, 1) for n in shape[1:]]
    slab_bytes = math.prod(trailing) * itemsize
    leading = min(max(block_bytes // max(slab_bytes, 1), 1), max(shape[0], 1))
    return (int(leading), *trailing)


def _scalar(value: Any) -> Any:
    """A NumPy scalar (or 1-element array) as a Python scalar; ``None`` stays ``None``."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


class _Unconvertible(Exception):
    """An attribute value with no JSON form (HDF5 references, compound values)."""


def _jsonable(value: Any, *, unwrap_singletons: bool) -> Any:
    """``value`` as JSON-serializable Python; raises :class:`_Unconvertible`."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcSUO" or value.dtype.fields is not None:
            raise _Unconvertible(value.dtype)
        if unwrap_singletons and value.ndim == 1 and value.size == 1:
            return _jsonable(value[0], unwrap_singletons=False)
        return [_jsonable(v, unwrap_singletons=False) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item(), unwrap_singletons=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, complex):  # as Zarr v3 stores a complex fill value
        return [value.real, value.imag]
    if isinstance(value, list | tuple):
        return [_jsonable(v, unwrap_singletons=False) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, unwrap_singletons=False) for k, v in value.items()}
    raise _Unconvertible(type(value))


def json_value(value: Any) -> Any:
    """``value`` (NumPy scalars and arrays, bytes, nested lists and dicts) as
    JSON-serializable Python, as attributes are stored."""
    return _jsonable(value, unwrap_singletons=False)


def _attributes(
    items: Mapping[str, Any], *, drop: frozenset[str], unwrap_singletons: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key in drop:
            continue
        try:
            out[key] = _jsonable(value, unwrap_singletons=unwrap_singletons)
        except _Unconvertible:
            continue
    return out


def _normalize(box: Any, ndim: int) -> tuple[slice, ...]:
    index = box if isinstance(box, tuple) else (box,)
    if len(index) > ndim or not all(isinstance(s, slice) for s in index):
        raise TypeError(f"read a box as a tuple of at most {ndim} slices, not {box!r}")
    return (*index, *(slice(None),) * (ndim - len(index)))


def _natural_key(path: str) -> list[Any]:
    """Sort ``img2.tif`` before ``img10.tif``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


# --- readers --------------------------------------------------------------------------


class _Lazy:
    """A lazily opened handle, guarded by a lock; pickles as how to open it, not the handle.

    ``opener`` and ``closer`` must be picklable (module functions or partials of them).
    """

    def __init__(self, opener: Callable[[], Any], closer: Callable[[Any], None]) -> None:
        self._opener = opener
        self._closer = closer
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.RLock()
        self._handle: Any = None

    @property
    def lock(self) -> threading.RLock:
        """Held while the handle is opened or closed; readers share it for file access."""
        return self._lock

    def get(self) -> Any:
        """The open handle, opening it on first use (again after :meth:`close`)."""
        with self._lock:
            if self._handle is None:
                self._handle = self._opener()
            return self._handle

    def close(self) -> None:
        """Close the handle if open."""
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                self._closer(handle)

    def __getstate__(self) -> dict[str, Any]:
        return {"_opener": self._opener, "_closer": self._closer}

    def __del__(self) -> None:
        # A copy unpickled on a worker is never closed explicitly: close its file here.
        with contextlib.suppress(Exception):
            self.close()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()


def _close_handle(handle: Any) -> None:
    handle.close()


def _h5_file(path: str) -> Any:
    import h5py

    return h5py.File(path, "r")


def _tiff_handle(path: str) -> Any:
    import tifffile

    return tifffile.TiffFile(path)


class _MemmapReader:
    """Reads boxes of an uncompressed array stored at ``offset`` bytes of a file, in C or
    Fortran order: NumPy files, MRC volumes and contiguous TIFF series. ``file_dtype``
    carries the file's byte order; boxes come back as ``dtype``.

    Each read maps only the file's span of the box, at most :data:`READ_BLOCK_BYTES` of
    whole outer slices at a time (one slice when a slice is larger), copies the box out
    and unmaps the span at once: a mapped page counts in resident memory for as long as
    it stays mapped, so a map held open across a conversion grew with every page read
    (768 MiB file, 96 MiB budget: +459 MiB). Holds no handle between reads; every read
    opens the file.
    """

    def __init__(
        self,
        path: str,
        offset: int,
        shape: tuple[int, ...],
        file_dtype: np.dtype[Any],
        dtype: np.dtype[Any] | None = None,
        order: Literal["C", "F"] = "C",
    ) -> None:
        self.path = path
        self.offset = offset
        self.shape = shape
        self.file_dtype = file_dtype
        self.dtype: np.dtype[Any] = file_dtype if dtype is None else dtype
        self.order = order
        self.ndim = len(shape)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        index = _normalize(box, self.ndim)
        ranges = [range(*s.indices(n)) for s, n in zip(index, self.shape, strict=True)]
        if any(r.step != 1 for r in ranges):  # strided: read the stretch, then pick
            stretch = tuple(
                slice(r.start, r.start + (len(r) - 1) * r.step + 1) if r else slice(0, 0)
                for r in ranges
            )
            picks = tuple(slice(None, None, r.step) for r in ranges)
            return np.ascontiguousarray(self[stretch][picks])
        out = np.empty([len(r) for r in ranges], self.dtype)
        if out.size == 0:
            return out
        if self.ndim == 0:
            return self._span(0, 1, ())
        outer = 0 if self.order == "C" else self.ndim - 1
        rest = [n for i, n in enumerate(self.shape) if i != outer]
        slice_bytes = max(1, math.prod(rest) * self.file_dtype.itemsize)
        step = max(1, READ_BLOCK_BYTES // slice_bytes)
        along = ranges[outer]
        for start in range(along.start, along.stop, step):
            stop = min(start + step, along.stop)
            mapped_shape = (*rest[:outer], stop - start, *rest[outer:])
            inner = list(index)
            inner[outer] = slice(0, stop - start)
            where = [slice(None)] * self.ndim
            where[outer] = slice(start - along.start, stop - along.start)
            self._copy(start, stop, mapped_shape, tuple(inner), out, tuple(where))
        return out

    def _span(self, start: int, stop: int, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """Outer slices ``[start, stop)`` read into a new array (the 0-d case)."""
        values = np.empty(shape, self.dtype)
        self._copy(start, stop, shape, (), values, ())
        return values

    def _copy(
        self,
        start: int,
        stop: int,
        mapped_shape: tuple[int, ...],
        inner: tuple[slice, ...],
        out: np.ndarray[Any, Any],
        where: tuple[slice, ...],
    ) -> None:
        """Map outer slices ``[start, stop)``, copy ``[inner]`` of them into
        ``out[where]``, unmap."""
        import mmap

        itemsize = self.file_dtype.itemsize
        per_slice = math.prod(mapped_shape) // max(1, stop - start) if mapped_shape else 1
        first = self.offset + start * per_slice * itemsize
        length = max(1, math.prod(mapped_shape)) * itemsize
        aligned = first - first % mmap.ALLOCATIONGRANULARITY
        with (
            open(self.path, "rb") as file,
            mmap.mmap(
                file.fileno(), length + first - aligned, access=mmap.ACCESS_READ, offset=aligned
            ) as mapped,
        ):
            flat = np.frombuffer(
                mapped, self.file_dtype, count=max(1, math.prod(mapped_shape)),
                offset=first - aligned,
            )  # fmt: skip
            view = flat.reshape(mapped_shape, order=self.order)
            out[where] = view[inner]
            del flat, view  # the map cannot close while NumPy still points into it


class _H5Reader:
    """Reads boxes of one HDF5 dataset; the file handle is shared by a source's readers."""

    def __init__(
        self, file: _Lazy, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> None:
        self.file = file
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        dataset = self.file.get()[self.name]
        if self.dtype.kind == "T":  # variable-length strings: str objects, as NumPy strings
            return np.asarray(dataset.asstr()[box], dtype=self.dtype)
        values = dataset[box]  # h5py returns a new array (or a scalar)
        return values if isinstance(values, np.ndarray) else np.asarray(values)


class _TiffPagesReader:
    """Reads boxes of a TIFF series one page at a time (pages are compressed or scattered).

    The leading dimensions number the pages in C order; the trailing ones are a page.
    Seeks and reads share one lock; decoding runs outside it.
    """

    def __init__(
        self,
        path: str,
        shape: tuple[int, ...],
        page_ndim: int,
        dtype: np.dtype[Any],
    ) -> None:
        self.path = path
        self.shape = shape
        self.page_ndim = page_ndim
        self.dtype = dtype
        self.ndim = len(shape)
        self._tif = _Lazy(functools.partial(_tiff_handle, path), _close_handle)

    def _page(self, index: int) -> np.ndarray[Any, Any]:
        tif = self._tif.get()
        with self._tif.lock:  # tifffile reads page headers lazily from the shared handle
            page = tif.series[0].pages[index]
        if page is None:  # a page missing from a truncated series
            return np.zeros(self.shape[self.ndim - self.page_ndim :], self.dtype)
        values: np.ndarray[Any, Any] = page.asarray(lock=self._tif.lock, maxworkers=1)
        return values

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        index = _normalize(box, self.ndim)
        lead = self.ndim - self.page_ndim
        return _read_planes(
            self.shape,
            self.dtype,
            index,
            lead,
            lambda pos: self._page(_ravel(pos, self.shape[:lead])),
        )

    def close(self) -> None:
        """Close the TIFF file."""
        self._tif.close()


class _TiffWholeReader:
    """Reads a TIFF series whose pages do not tile its shape: the whole series each time.

    Its one chunk is the whole array, so a copy reads it once; every read opens the file.
    """

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.path = path
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        import tifffile

        values = np.asarray(tifffile.imread(self.path, series=0)).reshape(self.shape)
        return np.array(values[box], copy=True)


class _TiffStackReader:
    """Reads boxes of a stack of TIFF files, one file per index of the first dimension.

    Every read opens and closes its files, so it holds no handle and needs no lock.
    """

    def __init__(self, files: tuple[str, ...], shape: tuple[int, ...], dtype: np.dtype[Any]):
        self.files = files
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def _plane(self, pos: tuple[int, ...]) -> np.ndarray[Any, Any]:
        import tifffile

        values: np.ndarray[Any, Any] = tifffile.imread(self.files[pos[0]], series=0)
        return values

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        return _read_planes(self.shape, self.dtype, _normalize(box, self.ndim), 1, self._plane)


def _ravel(pos: tuple[int, ...], shape: tuple[int, ...]) -> int:
    return int(np.ravel_multi_index(pos, shape)) if pos else 0


def _read_planes(
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    box: tuple[slice, ...],
    lead: int,
    plane: Callable[[tuple[int, ...]], np.ndarray[Any, Any]],
) -> np.ndarray[Any, Any]:
    """Assemble a box from planes: ``plane(pos)`` reads the trailing dims at ``pos``."""
    ranges = [range(*s.indices(n)) for s, n in zip(box[:lead], shape[:lead], strict=True)]
    rest = box[lead:]
    sizes = [len(range(*s.indices(n))) for s, n in zip(rest, shape[lead:], strict=True)]
    out = np.empty([len(r) for r in ranges] + sizes, dtype)
    if out.size == 0:
        return out
    for where in itertools.product(*(enumerate(r) for r in ranges)):
        out[tuple(i for i, _ in where)] = plane(tuple(p for _, p in where))[rest]
    return out


@dataclass(frozen=True)
class _ZarrLocation:
    """Where a Zarr store is, enough to open it again in another process."""

    kind: str  # "local", "zip" or "fsspec"
    target: str  # absolute path or URL
    storage_options: dict[str, Any]

    def open_store(self) -> Any:
        from zarr.storage import FsspecStore, LocalStore, ZipStore

        if self.kind == "zip":
            return ZipStore(self.target, mode="r", read_only=True)
        if self.kind == "local":
            return LocalStore(self.target, read_only=True)
        return FsspecStore.from_url(
            self.target, storage_options=dict(self.storage_options), read_only=True
        )


def _close_store(store: Any) -> None:
    from chunkwise.io.stores import close_sessions

    close_sessions([store])
    if store._is_open:  # a zip that failed to open has no file to close
        store.close()


class _ZarrReader:
    """Reads boxes of a Zarr array; pickles as its store's location and re-opens lazily."""

    def __init__(self, location: _ZarrLocation, array: Any) -> None:
        self.location = location
        self.name: str = array.path
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype: np.dtype[Any] = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self._array: Any = array
        self._store: Any = None  # a store this reader opened itself
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._array is None:
                import zarr

                from chunkwise.io.zarr_compat import checked_reads

                self._store = self.location.open_store()
                with checked_reads():
                    self._array = zarr.open_array(self._store, mode="r", path=self.name)
            return self._array

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        return np.asarray(self._get()[box])

    def zarr_array(self) -> Any:
        """The zarr array read (opened again after unpickling)."""
        return self._get()

    def close(self) -> None:
        """Close the store this reader re-opened after unpickling, if any."""
        with self._lock:
            store, self._store = self._store, None
            if store is not None:
                self._array = None
                _close_store(store)

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location, "name": self.name, "shape": self.shape,
                "dtype": self.dtype}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.ndim = len(self.shape)
        self._array = None
        self._store = None
        self._lock = threading.Lock()


# --- NumPy ----------------------------------------------------------------------------


def _open_npy(url: str, path: str, inner: str, options: dict[str, Any]) -> Source:
    file = Path(path)
    if not file.is_file():
        raise _missing(url)
    try:
        values = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpecError(
            f"source {url!r} is not a readable .npy array ({exc}); save it with numpy.save."
        ) from None
    if not isinstance(values, np.ndarray) or values.dtype.hasobject:
        raise SpecError(
            f"source {url!r} holds {getattr(values, 'dtype', 'no array')!s} values, which "
            "Zarr cannot store; save numbers, strings, dates or records of them."
        )
    shape, dtype = tuple(values.shape), values.dtype
    order: Literal["C", "F"] = "C"
    if values.flags.f_contiguous and not values.flags.c_contiguous:
        order = "F"
    offset = int(getattr(values, "offset", 0))
    del values
    reader = _MemmapReader(str(file.resolve()), offset, shape, dtype, order=order)
    description = f"NumPy file {file.name} ({_extent(shape, dtype)})"
    return _memmapped_source(url, "npy", description, reader, dims=None, attributes={})


def _memmapped_source(
    url: str,
    kind: str,
    description: str,
    reader: _MemmapReader,
    *,
    dims: tuple[str, ...] | None,
    attributes: dict[str, Any],
) -> Source:
    """A source of one uncompressed array read through a memory map (``.npy``, MRC)."""
    shape, dtype = reader.shape, reader.dtype
    array = SourceArray(
        path="",
        data=reader,
        shape=shape,
        dtype=dtype,
        chunks=read_block_chunks(shape, dtype.itemsize, block_bytes=READ_BLOCK_BYTES),
        dims=dims,
        attributes=attributes,
        fill_value=None,
        flexible=True,
        read_span_bytes=READ_BLOCK_BYTES,
    )
    return Source(
        url=url, kind=kind, description=description, arrays=(array,), groups=(),
        is_group=False, zarr_format=None,
    )  # fmt: skip


# --- HDF5 and NetCDF-4 ----------------------------------------------------------------


def _check_hdf5(url: str, path: str, kind: str, h5py: Any) -> None:
    file = Path(path)
    if not file.exists():
        raise _missing(url)
    if not file.is_file():
        raise SpecError(f"source {url!r} is a folder, not an {kind} file; give the file itself.")
    with open(file, "rb") as handle:
        magic = handle.read(4)
    if magic == b"\x0e\x03\x13\x01":
        raise SpecError(
            f"source {url!r} is an HDF4 file, which chunkwise cannot read; convert it to HDF5 "
            "first, e.g. with the h4toh5 tool."
        )
    if not h5py.is_hdf5(str(file)):
        raise SpecError(
            f"source {url!r} is not an HDF5 file (its extension says {kind}); check that the "
            "file is complete and of the right type."
        )


def _open_h5(url: str, path: str, inner: str, skip: frozenset[str]) -> Source:
    h5py = _require("h5py", url)
    label = "HDF5"
    absolute = str(Path(path).resolve())
    file = _Lazy(functools.partial(_h5_file, absolute), _close_handle)
    try:
        handle = file.get()
    except OSError as exc:
        raise SpecError(f"source {url!r} could not be opened as {label} ({exc}).") from None
    try:
        return _h5_source(url, path, inner, handle, file, h5py, skip)
    except BaseException:
        file.close()
        raise


def _h5_source(
    url: str, path: str, inner: str, handle: Any, file: _Lazy, h5py: Any, skip: frozenset[str]
) -> Source:
    """The datasets of a plain HDF5 file (or of its group ``inner``), through h5py."""
    label, noun = "HDF5", "dataset"
    root = handle
    if inner:
        if inner not in handle:
            names = _h5_names(handle)
            raise SpecError(
                f"source {url!r} has no {noun} or group {inner!r}; it has "
                f"{', '.join(names[:6]) or 'none'}{', ...' if len(names) > 6 else ''}."
            )
        root = handle[inner]
    if isinstance(root, h5py.Dataset):
        why = _h5_dtype(root)
        if isinstance(why, str):
            raise _h5_refusal(url, inner, why, noun, lone=True)
        array = _h5_array(root, "", file, unwrap_singletons=False)
        return Source(
            url=url,
            kind="hdf5",
            description=f"{label} {noun} {_name(path)}#{inner} ({_extent(array.shape, array.dtype)})",
            arrays=(array,),
            groups=(),
            is_group=False,
            zarr_format=None,
            _closers=[file.close],
        )
    if not isinstance(root, h5py.Group):
        raise SpecError(f"{inner!r} in {url!r} is neither a {noun} nor a group; pick one that is.")
    datasets: list[tuple[str, Any]] = []
    groups: list[SourceGroup] = [SourceGroup("", _h5_attributes(root, False))]

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            datasets.append((name, node))
        elif isinstance(node, h5py.Group):
            groups.append(SourceGroup(name, _h5_attributes(node, False)))

    root.visititems(visit)
    arrays = []
    skipped = []
    for name, dataset in datasets:
        if _dimension_only(dataset):
            continue
        why = _h5_dtype(dataset)
        if isinstance(why, str) and name in skip:
            skipped.append(f"{name} (--skip; it holds {why})")
            continue
        if isinstance(why, str):  # nothing is dropped silently: stop, naming it
            raise _h5_refusal(url, name, why, noun, lone=False)
        arrays.append(_h5_array(dataset, name, file, unwrap_singletons=False))
    where = f"{_name(path)}#{inner}" if inner else _name(path)
    if not arrays:
        raise SpecError(
            f"source {url!r} has no {noun}s to convert; pick a file or group that holds arrays."
        )
    description = f"{label} {'group' if inner else 'file'} {where} ({_plural(len(arrays), noun)})"
    return Source(
        url=url,
        kind="hdf5",
        description=description,
        arrays=tuple(sorted(arrays, key=lambda a: a.path)),
        groups=tuple(sorted(groups, key=lambda g: g.path)),
        is_group=True,
        zarr_format=None,
        skipped=tuple(skipped),
        _closers=[file.close],
    )


def _h5_names(handle: Any) -> list[str]:
    names: list[str] = []

    def visit(name: str, node: Any) -> None:
        if not _dimension_only(node):
            names.append(repr(name))

    handle.visititems(visit)
    return names


def _dimension_only(node: Any) -> bool:
    """netCDF's stand-in dataset for a dimension that has no coordinate variable."""
    name = node.attrs.get("NAME") if "NAME" in node.attrs else None
    return isinstance(name, bytes) and name.startswith(_NETCDF_DIMENSION_ONLY)


def _h5_dtype(dataset: Any) -> np.dtype[Any] | str:
    """The NumPy dtype a dataset is copied as, or why Zarr cannot store it: numbers
    (enums as their integers), fixed-length bytes, variable-length strings (as NumPy
    strings), records of those, opaque bytes, dates."""
    import h5py

    if dataset.shape is None:
        return "an empty (null) dataspace, with no values"
    dtype = dataset.dtype
    if h5py.check_ref_dtype(dtype) is not None:
        return "HDF5 object references"
    info = h5py.check_string_dtype(dtype)
    if info is not None and info.length is None:
        return np.dtypes.StringDType()
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    if dtype.fields is not None:
        plain = np.dtype(dtype.descr)
        return "records with variable-length fields" if plain.hasobject else plain
    out = np.dtype(dtype.str)  # drops h5py's enum / type metadata
    return "Python objects" if out.hasobject else out


def _h5_refusal(url: str, name: str, why: str, noun: str, lone: bool) -> SpecError:
    other = (
        ""
        if lone
        else f"; leave it out with --skip {name}, or convert the other ones by naming each "
        "(SOURCE#path)"
    )
    return SpecError(f"{noun} {name!r} of {url!r} holds {why}, which Zarr cannot store{other}.")


def _h5_attributes(node: Any, unwrap_singletons: bool) -> dict[str, Any]:
    drop = _INTERNAL_ATTRS
    if node.attrs.get("CLASS") == b"DIMENSION_SCALE":
        drop = drop | _SCALE_ATTRS
    return _attributes(node.attrs, drop=drop, unwrap_singletons=unwrap_singletons)


def _h5_array(dataset: Any, path: str, file: _Lazy, *, unwrap_singletons: bool) -> SourceArray:
    _check_filters(dataset)
    shape = tuple(int(n) for n in dataset.shape)
    dtype = _h5_dtype(dataset)
    assert not isinstance(dtype, str)
    chunks = dataset.chunks or read_block_chunks(
        shape, max(dtype.itemsize, 1), block_bytes=READ_BLOCK_BYTES
    )
    # Only an explicit _FillValue means "missing"; HDF5's default fill (0) is a storage
    # detail, and carrying it over would make xarray mask real zeros.
    fill = dataset.attrs.get("_FillValue")
    return SourceArray(
        path=path,
        data=_H5Reader(file, dataset.name, shape, dtype),
        shape=shape,
        dtype=dtype,
        chunks=tuple(int(c) for c in chunks),
        dims=_h5_dims(dataset),
        attributes=_h5_attributes(dataset, unwrap_singletons),
        fill_value=_scalar(fill) if fill is not None else None,
        flexible=dataset.chunks is None and dtype.kind != "T",  # contiguous: any hyperslab
        library_bytes=H5_LIBRARY_BYTES,
    )


def _check_filters(dataset: Any) -> None:
    """Fail at open, not mid-copy, when a dataset needs an HDF5 filter that is not installed."""
    import h5py

    plist = dataset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if not h5py.h5z.filter_avail(code):
            raise SpecError(
                f"dataset {dataset.name!r} is compressed with HDF5 filter {code}, which is not "
                "installed; install it with: pip install hdf5plugin."
            )


def _h5_dims(dataset: Any) -> tuple[str, ...] | None:
    """Dimension names from attached dimension scales (NetCDF-4) or labels, else ``None``."""
    names = []
    for dim in dataset.dims:
        scales = dim.values()
        if scales:
            names.append(str(scales[0].name).rsplit("/", 1)[-1])
        elif dim.label:
            names.append(str(dim.label))
        elif dataset.ndim == 1 and dataset.is_scale:  # a coordinate variable is its own scale
            names.append(str(dataset.name).rsplit("/", 1)[-1])
        else:
            return None
    return tuple(names)


def _open_hdf5(
    url: str, path: str, inner: str, options: dict[str, Any], skip: frozenset[str] = frozenset()
) -> Source:
    """Plain HDF5 through h5py; a file that follows CF (or that netCDF wrote) through
    xarray, like a NetCDF file."""
    from chunkwise.io.sources.cf import is_cf_hdf5, open_cf

    if Path(path).is_file():
        with open(path, "rb") as handle:
            if handle.read(3) == b"CDF":  # NetCDF-3 under an HDF5 name
                return open_cf(url, path, inner, skip=skip)
    h5py = _require("h5py", url)
    _check_hdf5(url, path, "HDF5", h5py)
    if is_cf_hdf5(path):
        return open_cf(url, path, inner, hdf5_label="CF HDF5", skip=skip)
    return _open_h5(url, path, inner, skip)


def _open_netcdf(
    url: str, path: str, inner: str, options: dict[str, Any], skip: frozenset[str] = frozenset()
) -> Source:
    """NetCDF-3 and NetCDF-4 through xarray (:mod:`chunkwise.io.sources.cf`)."""
    from chunkwise.io.sources.cf import open_cf

    return open_cf(url, path, inner, skip=skip)


# --- TIFF -----------------------------------------------------------------------------


def _open_tiff(url: str, path: str, inner: str, options: dict[str, Any]) -> Source:
    tifffile = _require("tifffile", url)
    if inner:
        raise SpecError(
            f"source {url!r} selects {inner!r} inside a TIFF file, which has no paths; "
            "drop the '#...' part."
        )
    if glob.has_magic(path):
        files = [f for f in glob.glob(path) if Path(f).is_file()]
        if not files:
            raise SpecError(f"source {url!r} matches no files; check the pattern.")
        return _tiff_stack(url, path, sorted(files, key=_natural_key), tifffile)
    if Path(path).is_dir():
        files = [str(p) for p in Path(path).iterdir() if p.suffix.lower() in (".tif", ".tiff")]
        return _tiff_stack(url, path, sorted(files, key=_natural_key), tifffile)
    if not Path(path).is_file():
        raise _missing(url)
    return _tiff_file(url, path, tifffile)


def _tiff_open(url: str, path: str, tifffile: Any) -> Any:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct errors
        raise SpecError(
            f"source {url!r}: {Path(path).name!r} is not a readable TIFF file ({exc}); check "
            "that it is complete and of the right type."
        ) from None
    if not tif.series:
        tif.close()
        raise SpecError(
            f"source {url!r}: {Path(path).name!r} holds no readable image; check that it is a "
            "complete TIFF file."
        )
    return tif


def _tiff_dims(axes: str) -> tuple[str, ...]:
    """``"ZYX"`` -> ``("z", "y", "x")``; other letters (``Q``: unknown) become ``dim_i``."""
    names: list[str] = []
    for i, letter in enumerate(axes.upper()):
        name = letter.lower() if letter in _TIFF_AXES else f"dim_{i}"
        names.append(name if name not in names else f"dim_{i}")
    return tuple(names)


def _tiff_attributes(tif: Any) -> dict[str, Any]:
    """Pixel size: the page's resolution tags and ImageJ's spacing and unit."""
    page = tif.pages.first
    out: dict[str, Any] = {}
    resolution = tuple(float(r) for r in page.resolution)
    unit = int(page.resolutionunit)
    if resolution != (1.0, 1.0) or unit not in (1, 2):  # 1: none, 2: inch (the default)
        out["resolution"] = list(resolution)  # pixels per unit along x, y
        out["resolution_unit"] = page.resolutionunit.name.lower()
    for key in ("spacing", "unit", "finterval"):
        value = (tif.imagej_metadata or {}).get(key)
        if isinstance(value, int | float | str):
            out[key] = value
    return out


def _tiff_file(url: str, path: str, tifffile: Any) -> Source:
    tif = _tiff_open(url, path, tifffile)
    try:
        series = tif.series[0]
        shape = tuple(int(n) for n in series.shape)
        dtype = np.dtype(series.dtype)
        page_shape = tuple(int(n) for n in series.keyframe.shape)
        dims = _tiff_dims(series.axes)
        attributes = _tiff_attributes(tif)
        skipped = tuple(f"series {i}" for i in range(1, len(tif.series)))
        lead = len(shape) - len(page_shape)
        tiles = lead >= 0 and shape[lead:] == page_shape
        absolute = str(Path(path).resolve())
        reader: ArrayReader
        if series.dataoffset is not None:  # contiguous, uncompressed: map it
            file_dtype = np.dtype(tif.byteorder + dtype.char)
            reader = _MemmapReader(absolute, int(series.dataoffset), shape, file_dtype, dtype)
        elif tiles and math.prod(shape[:lead]) == len(series.pages):
            reader = _TiffPagesReader(absolute, shape, len(page_shape), dtype)
        else:
            reader, tiles, lead = _TiffWholeReader(absolute, shape, dtype), False, 0
    finally:
        tif.close()
    chunks = (*(1,) * lead, *page_shape) if tiles else tuple(max(n, 1) for n in shape)
    return Source(
        url=url,
        kind="tiff",
        description=f"TIFF file {Path(path).name} ({_extent(shape, dtype)}, axes {series.axes})",
        arrays=(
            SourceArray(
                "",
                reader,
                shape,
                dtype,
                chunks,
                dims,
                attributes,
                fill_value=None,
                flexible=isinstance(reader, _MemmapReader),
                read_span_bytes=READ_BLOCK_BYTES if isinstance(reader, _MemmapReader) else 0,
            ),
        ),
        groups=(),
        is_group=False,
        zarr_format=None,
        skipped=skipped,
        _closers=[getattr(reader, "close", lambda: None)],
    )


def _tiff_stack(url: str, path: str, files: list[str], tifffile: Any) -> Source:
    if not files:
        raise SpecError(f"source {url!r} holds no .tif or .tiff files; give a folder of TIFFs.")
    first: tuple[tuple[int, ...], np.dtype[Any], str] | None = None
    attributes: dict[str, Any] = {}
    for file in files:
        tif = _tiff_open(url, file, tifffile)
        try:
            series = tif.series[0]
            plane = (tuple(int(n) for n in series.shape), np.dtype(series.dtype), series.axes)
            if first is None:
                first, attributes = plane, _tiff_attributes(tif)
        finally:
            tif.close()
        if plane[:2] != first[:2]:
            raise SpecError(
                f"source {url!r}: {Path(file).name!r} is {_extent(*plane[:2])} but "
                f"{Path(files[0]).name!r} is {_extent(*first[:2])}; every file of a stack "
                "must have the same shape and dtype."
            )
    assert first is not None
    plane_shape, dtype, axes = first
    shape = (len(files), *plane_shape)
    plane_dims = _tiff_dims(axes)
    dims = ("z", *plane_dims) if "z" not in plane_dims else None
    reader = _TiffStackReader(tuple(str(Path(f).resolve()) for f in files), shape, dtype)
    return Source(
        url=url,
        kind="tiff",
        description=f"TIFF stack {_name(path)} ({_plural(len(files), 'file')}, "
        f"{_extent(shape, dtype)})",
        arrays=(
            SourceArray(
                "", reader, shape, dtype, (1, *plane_shape), dims, attributes, fill_value=None
            ),
        ),
        groups=(),
        is_group=False,
        zarr_format=None,
    )


# --- MRC ------------------------------------------------------------------------------


def _open_mrc(url: str, path: str, inner: str, options: dict[str, Any]) -> Source:
    mrcfile = _require("mrcfile", url)
    file = Path(path)
    if not file.is_file():
        raise _missing(url)
    if inner:
        raise SpecError(
            f"source {url!r} selects {inner!r} inside an MRC file, which has no paths; "
            "drop the '#...' part."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mrc = mrcfile.mmap(str(file), mode="r", permissive=True)
        except Exception as exc:  # mrcfile raises ValueError, OSError for bad files
            raise SpecError(
                f"source {url!r} is not a readable MRC file ({exc}); check that it is complete."
            ) from None
    try:
        data = mrc.data
        problems = "; ".join(str(w.message) for w in caught)
        if not isinstance(data, np.memmap) or (problems and data.size == 0):
            raise SpecError(
                f"source {url!r} is not a readable MRC file ({problems or 'no data'}); check "
                "that it is complete and of the right type."
            )
        shape, dtype, offset = tuple(int(n) for n in data.shape), data.dtype, int(data.offset)
        attributes = _mrc_attributes(mrc)
        volume = mrc.is_volume() or mrc.is_volume_stack()
    finally:
        mrc.close()
    reader = _MemmapReader(str(file.resolve()), offset, shape, dtype)
    dims = {3: ("z", "y", "x"), 2: ("y", "x")}.get(len(shape))
    what = _MRC_KINDS.get(file.suffix.lower(), "tomogram" if volume else "image")
    description = f"MRC {what} {file.name} ({_extent(shape, dtype)})"
    return _memmapped_source(url, "mrc", description, reader, dims=dims, attributes=attributes)


def _mrc_attributes(mrc: Any) -> dict[str, Any]:
    """Voxel size and origin (x, y, z, ångström) and the non-empty labels."""
    size = mrc.voxel_size
    origin = mrc.header.origin
    out: dict[str, Any] = {
        "voxel_size": [float(size.x), float(size.y), float(size.z)],
        "origin": [float(origin.x), float(origin.y), float(origin.z)],
    }
    count = min(int(mrc.header.nlabl), len(mrc.header.label))
    labels = [bytes(b).decode("ascii", errors="replace").strip() for b in mrc.header.label[:count]]
    if any(labels):
        out["labels"] = [label for label in labels if label]
    return out


# --- Zarr -----------------------------------------------------------------------------


def _zarr_location(url: str, location: str, options: dict[str, Any]) -> _ZarrLocation:
    if location.startswith("zip://"):
        location = location.removeprefix("zip://")
        kind = "zip"
    elif location.startswith("file://"):
        location = location.removeprefix("file://")
        kind = "zip" if location.lower().endswith(".zip") else "local"
    elif "://" in location:
        return _ZarrLocation("fsspec", location, options)
    else:
        kind = "zip" if location.lower().endswith(".zip") else "local"
    path = Path(location).expanduser()
    if not path.exists():
        raise _missing(url)
    return _ZarrLocation(kind, str(path.resolve()), {})


def _open_zarr(url: str, location: str, inner: str, options: dict[str, Any]) -> Source:
    import zarr

    from chunkwise.io.zarr_compat import checked_reads

    where = _zarr_location(url, location, options)
    try:
        store = where.open_store()
    except ImportError as exc:  # fsspec's backend for this protocol is not installed
        raise MissingDependencyError(
            f"reading {url!r} needs a package that is not installed ({exc}); for s3:// "
            "install it with: pip install 'chunkwise[s3]'."
        ) from None
    except Exception as exc:  # unknown protocol, bad options
        raise SpecError(f"source {url!r} could not be opened ({exc}).") from None
    try:
        with checked_reads():  # the arrays it opens refuse truncated Blosc objects
            return _zarr_source(url, location, inner, where, store, zarr)
    except BaseException:
        _close_store(store)
        raise


def _refuse_unfinished(url: str, store: Any) -> None:
    """A store a chunkwise run is still writing (or was killed writing) is not a source."""
    from zarr.core.sync import sync
    from zarr.storage import ZipStore

    from chunkwise.io.markers import RUN_RECORD

    if isinstance(store, ZipStore):  # never a target: chunkwise does not write zips
        return
    if sync(store.exists(RUN_RECORD)):
        raise SpecError(
            f"source {url!r} is the target of an unfinished chunkwise run (it holds "
            f"{RUN_RECORD}); run that command again to finish it before reading from it."
        )


def _zarr_source(
    url: str, location: str, inner: str, where: _ZarrLocation, store: Any, zarr: Any
) -> Source:
    _refuse_unfinished(url, store)
    try:
        node = zarr.open(store, mode="r", path=inner or None)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise source_io_error(url, exc) from None
        raise _no_node(url, inner, store, zarr, exc) from None
    except Exception as exc:  # zarr raises several types for "no node here"
        raise _no_node(url, inner, store, zarr, exc) from None
    zarr_format = int(node.metadata.zarr_format)
    closers = [lambda: _close_store(store)]
    name = f"{_name(location)}#{inner}" if inner else _name(location)
    if isinstance(node, zarr.Array):
        array = _zarr_array(node, "", where)
        return Source(
            url=url,
            kind="zarr",
            description=f"Zarr v{zarr_format} array {name} ({_extent(array.shape, array.dtype)})",
            arrays=(array,),
            groups=(),
            is_group=False,
            zarr_format=zarr_format,
            _closers=closers,
        )
    arrays, groups = [], [SourceGroup("", dict(node.attrs.asdict()))]
    for path, member in node.members(max_depth=None):
        if isinstance(member, zarr.Array):
            arrays.append(_zarr_array(member, path, where))
        else:
            groups.append(SourceGroup(path, dict(member.attrs.asdict())))
    if not arrays:
        raise SpecError(
            f"source {url!r} is a Zarr group with no arrays; give a group or array with data."
        )
    return Source(
        url=url,
        kind="zarr",
        description=f"Zarr v{zarr_format} group {name} ({_plural(len(arrays), 'array')})",
        arrays=tuple(sorted(arrays, key=lambda a: a.path)),
        groups=tuple(sorted(groups, key=lambda g: g.path)),
        is_group=True,
        zarr_format=zarr_format,
        _closers=closers,
    )


def _no_node(url: str, inner: str, store: Any, zarr: Any, exc: BaseException) -> SpecError:
    if inner:
        names = _zarr_names(store, zarr)
        return SpecError(
            f"source {url!r} has no array or group {inner!r}; "
            + (f"it has {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}." if names
               else "its root is not a Zarr group.")
        )  # fmt: skip
    return SpecError(
        f"source {url!r} is neither a Zarr array nor a Zarr group ({exc}); give a Zarr "
        "store, an HDF5/NetCDF-4, TIFF, MRC or .npy file."
    )


def _zarr_names(store: Any, zarr: Any) -> list[str]:
    try:
        root = zarr.open_group(store, mode="r")
        return [repr(path) for path in sorted(p for p, _ in root.members(max_depth=None))]
    except Exception:  # the root is not a group either
        return []


def _zarr_array(array: Any, path: str, where: _ZarrLocation) -> SourceArray:
    attributes = dict(array.attrs.asdict())
    legacy = attributes.pop("_ARRAY_DIMENSIONS", None)  # xarray's v2 dimension names
    names = getattr(array.metadata, "dimension_names", None)
    dims: tuple[str, ...] | None = None
    if names is not None and None not in names:
        dims = tuple(str(n) for n in names)
    elif isinstance(legacy, list) and len(legacy) == array.ndim:
        dims = tuple(str(n) for n in legacy)
    return SourceArray(
        path=path,
        data=_ZarrReader(where, array),
        shape=tuple(array.shape),
        dtype=np.dtype(array.dtype),
        chunks=tuple(array.chunks),  # the inner chunks of a sharded array (zarr 3.1)
        dims=dims,
        attributes=attributes,
        fill_value=_scalar(array.metadata.fill_value),
        zarr_array=array,
    )


_OPENERS: dict[str, Callable[[str, str, str, dict[str, Any]], Source]] = {
    "npy": _open_npy,
    "hdf5": _open_hdf5,
    "netcdf": _open_netcdf,
    "tiff": _open_tiff,
    "mrc": _open_mrc,
    "zarr": _open_zarr,
}
