"""Data to benchmark with: the user's own array, or generated data with realistic structure.

``--data`` takes one of:

=====================================  ==================================================
``path/to/array.npy``                  a NumPy file (memory-mapped)
``path/to/store.zarr``, ``s3://...``   a Zarr array; ``store.zarr#group/array`` picks one
                                       array of a group
``f.nc``, ``.h5``, ``.tif``, ``.mrc``  one array of any file ``convert`` reads (``f.nc#tas``
                                       picks one; alone only when it is the file's one
                                       array of the most dims)
``sample:air-temperature``             real climate data shipped in the ``iris-sample-data``
                                       wheel: air temperature (240, 37, 49) float32, A1B
                                       scenario over North America (``chunkwise[samples]``)
``synthetic:smooth``                   smooth structure plus noise, the spec's shape and dtype
``synthetic:tomogram``                 a tomogram-like volume: membranes, dense particles and
                                       noise, the spec's shape and dtype
=====================================  ==================================================

A ``region`` (``{dim: (start, stop)}``) takes a box out of a big array so the benchmark
stays small; the benchmark then runs on that box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chunkwise.errors import MissingDependencyError, SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.units import format_shape

__all__ = ["GENERATORS", "SAMPLES", "BenchData", "load_data", "parse_region"]

GENERATORS: dict[str, str] = {
    "smooth": "smooth structure plus noise (compresses like real measurements)",
    "tomogram": "a tomogram-like volume: membranes, dense particles, noise",
}

SAMPLES: dict[str, tuple[str, str, str]] = {
    # name: (file inside iris_sample_data/sample_data, variable, description)
    "air-temperature": (
        "A1B_north_america.nc",
        "air_temperature",
        "air temperature, A1B scenario, North America, 240 years x 37 x 49 (iris sample data)",
    ),
}

#: Most bytes a benchmark holds in memory (generated data or a region of a source).
MAX_GENERATED_BYTES = 2 * 2**30


@dataclass(frozen=True, slots=True)
class DataInfo:
    """Where the benchmark's data came from.

    Attributes
    ----------
    source
        What the user gave (a path, URL or generator name).
    description
        One line for humans, e.g. ``air temperature, A1B scenario, North America (iris sample data)``.
    synthetic
        ``True`` for generated data; reports label it as such.
    """

    source: str
    description: str
    synthetic: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"source": self.source, "description": self.description, "synthetic": self.synthetic}


@dataclass(frozen=True)
class BenchData:
    """An in-memory array and where it came from.

    Attributes
    ----------
    values
        The data, as a NumPy array (written to every candidate layout).
    info
        Source description; ``info.synthetic`` marks generated data.
    dims
        Dimension names when the source has them (Zarr v3, NetCDF), else ``None``.
    """

    values: np.ndarray[Any, Any]
    info: DataInfo
    dims: tuple[str, ...] | None = None


def parse_region(text: str | None, dims: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Parse ``"z=0:128,y=0:256"`` into ``{"z": (0, 128), "y": (0, 256)}``."""
    if not text:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for part in text.split(","):
        name, _, bounds = part.partition("=")
        start, _, stop = bounds.partition(":")
        try:
            box = (int(start or 0), int(stop))
        except ValueError:
            raise SpecError(
                f"region part {part!r} must look like dim=start:stop, e.g. z=0:128."
            ) from None
        if name.strip() not in dims:
            raise SpecError(
                f"region names dim {name.strip()!r}, but the array's dims are {list(dims)!r}."
            )
        if not 0 <= box[0] < box[1]:
            raise SpecError(f"region {part!r} is empty; start must be below stop.")
        out[name.strip()] = box
    return out


def load_data(
    source: str,
    *,
    array: ArraySpec | None = None,
    region: str | None = None,
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
) -> BenchData:
    """Load (or generate) the data a benchmark writes.

    Parameters
    ----------
    source
        A path, URL, ``sample:NAME`` or ``synthetic:NAME`` (see the module docstring).
    array
        The spec's array; generators take shape and dtype from it, and file sources take
        dimension names from it when they have none.
    region
        ``"dim=start:stop,..."``: benchmark on this box of the source only.
    seed
        Seed of the generators' noise.
    storage_options
        fsspec options for remote Zarr sources.

    Raises
    ------
    SpecError
        For a source that does not exist or cannot be read, in one sentence.
    """
    kind, _, name = source.partition(":")
    if kind == "synthetic":
        if array is None:
            raise SpecError(
                f"data {source!r} needs an array spec (shape and dtype) to generate from."
            )
        box = parse_region(region, array.dims)
        shape = [
            len(range(*slice(*box[d]).indices(n))) if d in box else n
            for d, n in zip(array.dims, array.shape, strict=True)
        ]
        if 0 in shape:
            raise SpecError(
                f"region {region!r} selects nothing from the spec's array {array.shape}."
            )
        # Generate only the box: a region is how a too-big spec is benchmarked at all.
        data = _generated(
            name, ArraySpec.create(shape, array.dtype, list(array.dims)), seed, source
        )
        if box:
            info = data.info
            data = BenchData(
                data.values,
                DataInfo(info.source, f"{info.description}, region {region}", True),
                data.dims,
            )
        return data
    if kind == "sample":
        data = _sample(name, source)
    elif source.endswith(".npy"):
        data = _npy(source)
    elif _file_kind(source) != "zarr":
        data = _file(source)
    else:
        data = _zarr(source, storage_options or {})
    return _cut(data, array, region)


def _file_kind(url: str) -> str:
    """What :func:`~chunkwise.io.sources.readers.open_source` reads ``url`` as."""
    from chunkwise.io.sources.readers import _kind

    return _kind(url.rpartition("#")[0] if "#" in url else url)


def _file(url: str) -> BenchData:
    """One array of any file ``convert`` reads (NetCDF, HDF5, TIFF, MRC), read lazily."""
    from chunkwise.io.sources.readers import open_source

    source = open_source(url)
    try:
        numeric = [a for a in source.arrays if a.dtype.kind in "biufc" and a.shape]
        most = max((len(a.shape) for a in numeric), default=0)
        widest = [a for a in numeric if len(a.shape) == most]
        if len(widest) != 1:
            names = [f"{url}#{a.path}" for a in sorted(widest, key=lambda a: -math.prod(a.shape))]
            raise SpecError(
                f"data {url!r} holds {len(widest) or 'no'} numeric arrays of {most} dims; pick one: "
                f"{', '.join(names[:5]) or 'none to benchmark'}."
            )
    except BaseException:
        source.close()
        raise
    (chosen,) = widest
    where = f"{source.description}" + (f", {chosen.path}" if chosen.path else "")
    return BenchData(_LazySource(chosen, source), DataInfo(url, where, False), chosen.dims)  # type: ignore[arg-type]


class _LazySource:
    """An array of an opened source that reads only the box asked for (slices or ints)."""

    def __init__(self, array: Any, source: Any) -> None:
        self._array = array
        self._source = source
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray[Any, Any]:
        items = index if isinstance(index, tuple) else (index,)
        if any(item is Ellipsis for item in items):
            at = items.index(Ellipsis)
            fill = (slice(None),) * (self.ndim - len(items) + 1)
            items = (*items[:at], *fill, *items[at + 1 :])
        items = (*items, *(slice(None),) * (self.ndim - len(items)))
        box, squeeze = [], []
        for axis, item in enumerate(items):
            if isinstance(item, slice):
                box.append(item)
            else:  # an integer position
                position = int(item) % self.shape[axis]
                box.append(slice(position, position + 1))
                squeeze.append(axis)
        values: np.ndarray[Any, Any] = self._array.data[tuple(box)]
        return values.squeeze(axis=tuple(squeeze)) if squeeze else values

    def close(self) -> None:
        """Close the source's files."""
        self._source.close()


def _cut(data: BenchData, array: ArraySpec | None, region: str | None) -> BenchData:
    # The spec's names first: the workload and --region are written in them.
    dims = array.dims if array is not None and array.ndim == data.values.ndim else data.dims
    if dims is None:
        dims = tuple(f"dim_{i}" for i in range(data.values.ndim))
    box = parse_region(region, dims)
    index = tuple(
        slice(*box[d]) if d in box else slice(None) for d in dims
    )  # clipped by NumPy at the array's end
    selected = [len(range(*s.indices(n))) for s, n in zip(index, data.values.shape, strict=True)]
    full = tuple(data.values.shape)
    # The spec describes the data or the box of it benchmarked. (An empty source is named
    # below, a spec of another rank by bench's own check.)
    if (
        array is not None
        and array.ndim == len(full)
        and all(full)
        and array.shape not in (full, tuple(selected))
    ):
        picked = f" ({format_shape(selected)} in region {region})" if box else ""
        raise SpecError(
            f"the spec's array has shape {format_shape(array.shape)} but the data from "
            f"{data.info.source!r} has shape {format_shape(full)}{picked}; make the spec's shape "
            "match the data, or leave 'array' out of the spec to take it from the data."
        )
    nbytes = math.prod(selected) * data.values.dtype.itemsize
    if nbytes > MAX_GENERATED_BYTES:
        raise SpecError(
            f"data {data.info.source!r} selects {nbytes / 2**30:.1f} GiB, too much to benchmark in memory; "
            "pick a box with --region, e.g. --region "
            + ",".join(f"{d}=0:{min(n, 256)}" for d, n in zip(dims, data.values.shape, strict=True))
            + "."
        )
    values = np.ascontiguousarray(data.values[index])
    if isinstance(data.values, _LazyZarr | _LazySource):
        data.values.close()
    if values.size == 0:
        if region:
            raise SpecError(
                f"region {region!r} selects nothing from an array of shape {data.values.shape}."
            )
        raise SpecError(
            f"data {data.info.source!r} is empty (shape {data.values.shape}); "
            "give an array with values."
        )
    info = data.info
    if box:
        info = DataInfo(info.source, f"{info.description}, region {region}", info.synthetic)
    return BenchData(values, info, dims)


def _npy(path: str) -> BenchData:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SpecError(
            f"data file {path!r} does not exist; give a .npy file, a Zarr array or synthetic:smooth."
        )
    try:
        values = np.load(file, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise SpecError(f"data file {path!r} is not a readable .npy array ({exc}).") from None
    return BenchData(values, DataInfo(path, f"NumPy file {file.name}", synthetic=False))


def _zarr(url: str, storage_options: Mapping[str, Any]) -> BenchData:
    import zarr

    location, _, inner = url.partition("#")
    if "://" not in location and not Path(location).expanduser().exists():
        raise SpecError(
            f"data {url!r} is not a file, Zarr store, sample:NAME or synthetic:NAME; "
            f"generators are {', '.join('synthetic:' + g for g in GENERATORS)}."
        )
    store: Any = location
    if "://" in location:
        try:
            store = zarr.storage.FsspecStore.from_url(
                location, storage_options=dict(storage_options), read_only=True
            )
        except Exception as exc:  # unknown protocol, missing fsspec backend, bad options
            raise SpecError(f"data {url!r} could not be opened ({exc}).") from None
    try:
        node = zarr.open(store, mode="r", path=inner or None)
    except Exception as exc:  # zarr raises several types for "not a store"
        if not isinstance(store, str):
            from chunkwise.io.stores import close_sessions

            close_sessions([store])
        raise SpecError(f"data {url!r} could not be opened as a Zarr array ({exc}).") from None
    if not isinstance(node, zarr.Array):
        prefix = f"{inner.strip('/')}/" if inner.strip("/") else ""
        names = [f"{location}#{prefix}{name}" for name, member in node.members(max_depth=None)
                 if isinstance(member, zarr.Array)]  # fmt: skip
        raise SpecError(
            f"data {url!r} is a Zarr group; pick one of its arrays: {', '.join(names[:5]) or 'it has none'}."
        )
    names_meta = getattr(node.metadata, "dimension_names", None)
    dims = tuple(str(d) for d in names_meta) if names_meta and None not in names_meta else None
    return BenchData(_LazyZarr(node), DataInfo(url, f"Zarr array {url}", False), dims)  # type: ignore[arg-type]


class _LazyZarr:
    """A zarr array that reads only the region asked for (NumPy-style indexing)."""

    def __init__(self, arr: Any) -> None:
        self._arr = arr
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.ndim = arr.ndim

    def __getitem__(self, index: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self._arr[index])

    def close(self) -> None:
        """Close a remote store's HTTP sessions on zarr's event loop."""
        from chunkwise.io.stores import close_sessions

        close_sessions([self._arr.store])


def _sample(name: str, source: str) -> BenchData:
    if name not in SAMPLES:
        raise SpecError(
            f"sample {name!r} is unknown; use one of {', '.join('sample:' + s for s in SAMPLES)}."
        )
    file, variable, description = SAMPLES[name]
    try:
        import h5py
        import iris_sample_data
    except ImportError:
        raise MissingDependencyError(
            f"data {source!r} needs the iris-sample-data and h5py packages; "
            "install them with: pip install 'chunkwise[samples]'."
        ) from None
    path = Path(iris_sample_data.__file__).parent / "sample_data" / file
    with h5py.File(path, "r") as handle:
        dataset = handle[variable]
        values = np.asarray(dataset[...])
        dims = tuple(_dim_name(d) for d in dataset.dims)
    return BenchData(values, DataInfo(source, description, synthetic=False), dims)


def _dim_name(dim: Any) -> str:
    # NetCDF-4 dimension scales: the attached dataset's name is the dimension's name.
    try:
        return str(dim[0].name).rsplit("/", 1)[-1]
    except (IndexError, KeyError):
        return str(dim.label) or "dim"


def _generated(name: str, array: ArraySpec, seed: int, source: str) -> BenchData:
    if name not in GENERATORS:
        raise SpecError(
            f"generator {name!r} is unknown; use one of {', '.join('synthetic:' + g for g in GENERATORS)}."
        )
    if array.nbytes > MAX_GENERATED_BYTES:
        raise SpecError(
            f"the spec's array is {array.nbytes / 2**30:.1f} GiB, too big to generate for a benchmark; "
            "benchmark a smaller shape (the layout ranking carries over) or pass --region."
        )
    rng = np.random.default_rng(seed)
    field = _tomogram(array.shape, rng) if name == "tomogram" else _smooth(array.shape, rng)
    values = _to_dtype(field, np.dtype(array.dtype))
    label = f"SYNTHETIC {GENERATORS[name]}, {' x '.join(map(str, array.shape))} {array.dtype}"
    return BenchData(values, DataInfo(source, label, synthetic=True), array.dims)


def _grids(shape: tuple[int, ...]) -> list[np.ndarray[Any, Any]]:
    return [
        np.linspace(0.0, 1.0, n, dtype=np.float32).reshape(
            [n if i == axis else 1 for i in range(len(shape))]
        )
        for axis, n in enumerate(shape)
    ]


def _smooth(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """A few low-frequency waves along every axis, plus 2% noise: values in about [-1, 1]."""
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(4):
        term = np.ones((1,) * len(shape), dtype=np.float32)
        for grid in _grids(shape):
            freq, phase = rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
            term = term * np.cos(2 * math.pi * freq * grid + phase)
        field += term / 4
    field += rng.normal(0.0, 0.02, size=shape).astype(np.float32)
    return field


def _tomogram(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """Membrane shells and dense particles on a noisy background, like a denoised tomogram."""
    grids = _grids(shape)
    field = rng.normal(0.0, 0.3, size=shape).astype(np.float32)
    for _ in range(3):  # vesicle-like membrane shells
        centre = rng.uniform(0.2, 0.8, len(shape))
        radius, width = rng.uniform(0.15, 0.3), 0.015
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)))
        field -= 1.5 * np.exp(-(((dist - radius) / width) ** 2))
    sigma = 0.012
    for _ in range(40):  # ribosome-sized dense particles, drawn in a box of 4 sigma around each
        centre = rng.uniform(0.05, 0.95, len(shape))
        box = tuple(
            slice(max(0, int((c - 4 * sigma) * (n - 1))), int((c + 4 * sigma) * (n - 1)) + 2)
            for c, n in zip(centre, shape, strict=True)
        )
        dist2 = sum(
            (g[b] - c) ** 2 for g, b, c in zip(grids, _axis_boxes(box), centre, strict=True)
        )
        field[box] -= np.exp(-dist2 / (2 * sigma**2))
    return field


def _axis_boxes(box: tuple[slice, ...]) -> list[tuple[slice, ...]]:
    """For each axis, the index that cuts ``box`` out of that axis's broadcast grid."""
    ndim = len(box)
    return [
        tuple(b if i == axis else slice(None) for i, b in enumerate(box)) for axis in range(ndim)
    ]


def _to_dtype(field: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    if dtype.kind == "f":
        return field.astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(field.min()), float(field.max())
        span = (hi - lo) or 1.0
        top = min(float(info.max), 4095.0)  # detector-like dynamic range
        low = max(float(info.min), -top if dtype.kind == "i" else 0.0)
        return np.round(low + (field - lo) / span * (top - low)).astype(dtype)
    if dtype.kind == "b":
        return field > float(np.median(field))
    raise SpecError(
        f"generators make numeric data; dtype {dtype} is not supported, use a float or int dtype."
    )
