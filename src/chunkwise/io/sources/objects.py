"""In-memory and lazy data objects as sources: xarray Datasets and DataArrays, Dask arrays
and NumPy arrays.

A Dataset is encoded the way xarray encodes it for Zarr (``xarray.conventions``: times to
numbers with ``units`` and ``calendar``, packing by ``scale_factor``/``add_offset`` and
``_FillValue`` from each variable's ``encoding``, the ``coordinates`` attribute), then
written by chunkwise's own bounded, resumable, verified copy; ``xarray.open_zarr`` of the
target decodes it back to the Dataset. Dask-backed variables are computed one box at a time
(Dask's synchronous scheduler, in the task that reads the box), so a Dataset larger than
memory is written within the budget.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from chunkwise.errors import SpecError
from chunkwise.io.sources.readers import (
    READ_BLOCK_BYTES,
    Source,
    SourceArray,
    SourceGroup,
    _attributes,
    _scalar,
    read_block_chunks,
)
from chunkwise.model.dataset import DatasetSpec, VariableSpec, coordinate_names
from chunkwise.model.ome import read_ome
from chunkwise.units import format_bytes

__all__ = [
    "data_object_kind",
    "dataset_spec",
    "lazy_without_source",
    "object_paths",
    "object_source",
    "source_dataset",
]

#: The name of the one variable of an array object (NumPy, Dask, an unnamed DataArray).
ARRAY_NAME = "data"


def data_object_kind(obj: Any) -> str | None:
    """``"dataset"``, ``"dataarray"``, ``"dask"`` or ``"numpy"`` for a data object, else
    ``None`` (paths, specs), without importing xarray or Dask."""
    kind = type(obj)
    module = kind.__module__.split(".")[0]
    if module == "xarray" and kind.__name__ == "Dataset":
        return "dataset"
    if module == "xarray" and kind.__name__ == "DataArray":
        return "dataarray"
    if module == "dask" and kind.__name__ == "Array":
        return "dask"
    if isinstance(obj, np.ndarray):
        return "numpy"
    return None


def _as_dataset(obj: Any, dims: Sequence[str] | None) -> Any:
    """Any data object as an xarray Dataset (arrays become its variable ``data``)."""
    import xarray as xr

    kind = data_object_kind(obj)
    if kind == "dataset":
        if dims is not None:
            raise SpecError(
                "dims names the dims of an array without them; a Dataset has its own: drop dims."
            )
        return obj
    names = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(obj.ndim))
    if len(names) != obj.ndim or len(set(names)) != len(names):
        raise SpecError(
            f"dims {list(names)!r} has {len(names)} names but the array has {obj.ndim} dims; "
            "give one different name per dim."
        )
    if kind == "dataarray":
        if dims is not None:
            obj = obj.rename(dict(zip(obj.dims, names, strict=True)))
        return obj.to_dataset(name=obj.name if obj.name is not None else ARRAY_NAME)
    return xr.Dataset({ARRAY_NAME: (names, obj)})


def _roles(ds: Any) -> set[str]:
    """The coordinates of a Dataset: xarray's own, and what CF attributes point at."""
    variables = {str(k): (tuple(map(str, v.dims)), v.attrs) for k, v in ds.variables.items()}
    return coordinate_names(variables, declared=map(str, ds.coords))


def dataset_spec(obj: Any, dims: Sequence[str] | None = None) -> DatasetSpec:
    """The variables of a data object (names, shapes, dtypes, dims and roles).

    Parameters
    ----------
    obj
        An xarray Dataset or DataArray, a Dask array or a NumPy array.
    dims
        Names for the dims of an array that has none (``dim_0, ...`` by default).
    """
    ds = _as_dataset(obj, dims)
    coords = _roles(ds)
    return DatasetSpec.create(
        VariableSpec.create(
            str(name), variable.shape, variable.dtype, tuple(map(str, variable.dims)),
            "coordinate" if str(name) in coords else "data",
        )
        for name, variable in ds.variables.items()
    )  # fmt: skip


def _check_name(name: str) -> None:
    """A variable name that is also a name inside the target store."""
    if not name or "/" in name or name in (".", ".."):
        raise SpecError(
            f"variable name {name!r} cannot be an array name in a Zarr group (empty, '.', "
            "'..' or with '/'); rename it, e.g. ds.rename({...})."
        )


def lazy_without_source(obj: Any) -> bool:
    """Whether a data object reads from storage chunkwise cannot name (a Dask graph, or a
    store opened without ``encoding["source"]``): it might read the target itself."""
    kind = data_object_kind(obj)
    if kind == "dask":
        return True
    if kind not in ("dataset", "dataarray"):
        return False
    variables = (
        obj.variables.values() if kind == "dataset" else [obj.variable, *obj.coords.values()]
    )
    # per variable: a merged Dataset may name one file and read another store unnamed
    return any(
        (v.chunks is not None or not v._in_memory) and not v.encoding.get("source")
        for v in variables
    )


def object_paths(obj: Any) -> list[str]:
    """The files a Dataset was opened from (its ``encoding["source"]``), to keep a target
    from overlapping them."""
    if data_object_kind(obj) not in ("dataset", "dataarray"):
        return []
    found = {obj.encoding.get("source")}
    variables = obj.variables.values() if data_object_kind(obj) == "dataset" else [obj.variable]
    found.update(v.encoding.get("source") for v in variables)
    return sorted(str(p) for p in found if isinstance(p, str) and p)


class _VariableReader:
    """Reads boxes of one encoded xarray Variable, computing Dask-backed data box by box."""

    def __init__(self, variable: Any, dtype: np.dtype[Any]) -> None:
        self.variable = variable
        self.shape = tuple(variable.shape)
        self.dtype = dtype
        self.ndim = len(self.shape)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        data = self.variable[box].data if self.ndim else self.variable.data
        computed = hasattr(data, "dask")
        if computed:
            data = data.compute(scheduler="synchronous")
        if self.dtype.kind == "T" or computed:  # computed here: ours, no copy needed
            return np.asarray(data, dtype=self.dtype)
        return np.array(data, dtype=self.dtype, copy=True)


def _encoded(ds: Any, zarr_format: Literal[2, 3]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Dataset's variables and attributes as xarray's Zarr backend stores them
    (``encode_zarr_variable``: CF encoding, objects to numbers or text, text to UTF-8)."""
    from xarray import conventions
    from xarray.backends.zarr import encode_zarr_variable

    variables, attributes = conventions.encode_dataset_coordinates(ds)
    encoded = {}
    for name, variable in variables.items():
        variable = encode_zarr_variable(variable, name=name, zarr_format=zarr_format)
        if _text(variable.dtype):
            variable.attrs.pop("_FillValue", None)  # xarray writes no fill for text
        encoded[str(name)] = variable
    return encoded, attributes


def _text(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "OUT"


def _lazy_backend(ds: Any) -> list[str]:
    """Variables read lazily from a file but not through Dask (``open_dataset`` without
    ``chunks``): encoding or hashing them would load them whole."""
    return [
        str(name)
        for name, variable in ds.variables.items()
        if variable.chunks is None and not variable._in_memory
    ]


def _file_token(ds: Any, names: list[str]) -> str | None:
    """Identifies data read from files by each file's path, size and modification time
    (and the variables' names, attributes and encodings), without reading it."""
    digest = hashlib.sha256()
    for name in names:
        variable = ds.variables[name]
        source = variable.encoding.get("source") or ds.encoding.get("source")
        if not isinstance(source, str):
            return None
        try:
            stat = os.stat(source)
        except OSError:
            return None
        digest.update(repr((name, source, stat.st_size, stat.st_mtime_ns)).encode())
        digest.update(repr((sorted(variable.attrs.items()), sorted(variable.encoding.items())))
                      .encode())  # fmt: skip
    return digest.hexdigest()[:16]


def _chunked(ds: Any) -> Any:
    """``ds`` with its lazily read file variables under Dask, in blocks of their stored
    chunks (or about :data:`READ_BLOCK_BYTES`), named by the files rather than by their
    values (Dask would otherwise read every value to name them)."""
    lazy = _lazy_backend(ds)
    if not lazy:
        return ds
    sizes: dict[str, int] = {}
    for name in sorted(lazy, key=lambda n: -ds.variables[n].size):
        variable = ds.variables[name]
        stored = variable.encoding.get("chunksizes")
        blocks = tuple(stored) if stored else read_block_chunks(
            variable.shape, max(variable.dtype.itemsize, 1), block_bytes=READ_BLOCK_BYTES
        )  # fmt: skip
        for dim, size in zip(variable.dims, blocks, strict=True):
            sizes.setdefault(str(dim), int(size))
    token = _file_token(ds, lazy)
    chunks = {dim: sizes.get(str(dim), -1) for dim in ds.dims}
    return ds.chunk(chunks, token=token) if token else ds.chunk(chunks)


def _token(variables: dict[str, Any], attributes: dict[str, Any]) -> str:
    """Identifies the data as it will be stored: a Dask token of the encoded variables
    (their graph names, which carry every encoding step, or a hash of their values) and
    attributes, so that a run of other data, or other packing, never resumes this one's
    target."""
    try:
        from dask.base import tokenize
    except ImportError:
        digest = hashlib.sha256(repr(sorted(attributes.items())).encode())
        for name, variable in sorted(variables.items()):
            digest.update(repr((name, variable.dims, sorted(variable.attrs.items()))).encode())
            digest.update(np.ascontiguousarray(variable.values).tobytes())
        return digest.hexdigest()[:16]
    return str(tokenize(variables, attributes))[:16]


def _source_dtype(name: str, variable: Any) -> np.dtype[Any]:
    """Text (``str`` objects, NumPy unicode) is stored as variable-length strings."""
    dtype: np.dtype[Any] = np.dtype(variable.dtype)
    if dtype.kind == "O" and variable.encoding.get("dtype", str) is not str:
        values = variable[(slice(0, 1),) * variable.ndim].values if variable.size else ()
        if any(not isinstance(v, str) for v in np.ravel(values)):
            raise SpecError(
                f"variable {name!r} holds Python objects that are not text, which Zarr cannot "
                "store; convert it to numbers or strings first, or drop it."
            )
    return np.dtypes.StringDType() if dtype.kind in "OU" else dtype


def _chunks(variable: Any, dtype: np.dtype[Any]) -> tuple[tuple[int, ...], bool]:
    """Read granularity: a Dask array's (largest) chunks, else whole-dim blocks of about
    :data:`READ_BLOCK_BYTES` of data already in memory (any box reads alike)."""
    if variable.chunks is not None:
        return tuple(max(sizes) if sizes else 0 for sizes in variable.chunks), False
    shape = tuple(variable.shape)
    blocks = read_block_chunks(shape, max(dtype.itemsize, 1), block_bytes=READ_BLOCK_BYTES)
    return blocks, dtype.kind != "T"


def object_source(
    obj: Any, dims: Sequence[str] | None = None, zarr_format: Literal[2, 3] = 3
) -> Source:
    """A data object as a :class:`Source`: a group of its variables (a Dataset or DataArray)
    or one array (NumPy, Dask), encoded for ``zarr_format``."""
    kind = data_object_kind(obj)
    ds = _chunked(_as_dataset(obj, dims))
    variables, attributes = _encoded(ds, zarr_format)
    arrays = []
    for name, variable in variables.items():
        _check_name(name)
        dtype = _source_dtype(name, variable)
        chunks, flexible = _chunks(variable, dtype)
        fill = variable.attrs.get("_FillValue")
        arrays.append(
            SourceArray(
                path=name if kind in ("dataset", "dataarray") else "",
                data=_VariableReader(variable, dtype),
                shape=tuple(variable.shape),
                dtype=dtype,
                chunks=chunks,
                dims=tuple(map(str, variable.dims)),
                attributes=_attributes(
                    variable.attrs, drop=frozenset({"_FillValue"}), unwrap_singletons=False
                ),
                fill_value=_scalar(fill) if fill is not None else None,
                flexible=flexible,
            )
        )
    total = sum(int(np.prod(a.shape)) * max(a.dtype.itemsize, 1) for a in arrays)
    lazy = any(v.chunks is not None for v in variables.values())
    label = {"dataset": "xarray Dataset", "dataarray": "xarray DataArray"}.get(
        str(kind), f"{'Dask' if kind == 'dask' else 'NumPy'} array"
    )
    url = f"{label.replace(' ', '.')}@{_token(variables, attributes)}"
    if kind in ("dataset", "dataarray"):
        return Source(
            url=url,
            kind="xarray",
            description=f"{'lazy ' if lazy else ''}{label} ({len(arrays)} variables, "
            f"{format_bytes(total)})",
            arrays=tuple(sorted(arrays, key=lambda a: a.path)),
            groups=(
                SourceGroup("", _attributes(attributes, drop=frozenset(), unwrap_singletons=False)),
            ),
            is_group=True,
            zarr_format=None,
        )
    (array,) = arrays
    return Source(
        url=url,
        kind=str(kind),
        description=f"{label} ({format_bytes(total)})",
        arrays=(array,),
        groups=(),
        is_group=False,
        zarr_format=None,
    )


def source_dataset(source: Source) -> DatasetSpec:
    """An opened source's arrays as a dataset: their dims, and which are coordinates
    (per group; the one array of a source that is no group is data)."""
    groups: dict[str, dict[str, SourceArray]] = {}
    for array in source.arrays:
        scope, _, name = array.path.rpartition("/")
        groups.setdefault(scope, {})[name] = array
    declared = {g.path: g.attributes.get("coordinates") for g in source.groups}
    axes = level_axes(source)
    roles: dict[str, str] = {}
    for scope, members in groups.items():
        listed = declared.get(scope)
        found = coordinate_names(
            {name: (a.dims or axes.get(a.path, ()), a.attributes) for name, a in members.items()},
            declared=listed.split() if isinstance(listed, str) else (),
        )
        for name, array in members.items():
            roles[array.path] = "coordinate" if name in found and source.is_group else "data"
    return DatasetSpec.create(
        (
            VariableSpec.create(
                array.path, array.shape, array.dtype,
                array.dims or axes.get(array.path)
                or tuple(f"dim_{i}" for i in range(len(array.shape))),
                roles[array.path],  # type: ignore[arg-type]
            )
            for array in source.arrays
        ),
        unshared={a.path for a in source.arrays if a.dims is None} | image_levels(source),
    )  # fmt: skip


def level_axes(source: Source) -> dict[str, tuple[str, ...]]:
    """Dim names of OME-Zarr levels from their image's axes (NGFF 0.4 arrays on Zarr v2
    have none of their own), by array path."""
    out: dict[str, tuple[str, ...]] = {}
    ndims = {a.path: len(a.shape) for a in source.arrays}
    for group in source.groups:
        image = read_ome(group.attributes)
        if image is None:
            continue
        prefix = f"{group.path}/" if group.path else ""
        for dataset in image.datasets:
            path = prefix + dataset.path.strip("/")
            if ndims.get(path) == len(image.axes):
                out[path] = image.axis_names
    return out


def image_levels(source: Source) -> set[str]:
    """Paths of arrays that are levels of one image (an OME-Zarr pyramid being written, or
    the levels an OME-Zarr group lists): their dims have other sizes in each."""
    found = set(source.levels)
    for group in source.groups:
        image = read_ome(group.attributes)
        if image is not None:
            prefix = f"{group.path}/" if group.path else ""
            found.update(prefix + d.path.strip("/") for d in image.datasets)
    return found
