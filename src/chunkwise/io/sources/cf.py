"""NetCDF and CF-HDF5 files, read through xarray with its CF decoding off.

xarray opens the file (``netcdf4`` or ``scipy`` for NetCDF-3, ``h5netcdf`` for NetCDF-4 and
HDF5) with ``decode_cf=False``: every variable's values are read exactly as stored (packed
integers stay packed, times stay numbers, masked values keep their fill value), and every
attribute that tells a reader how to decode them (``scale_factor``, ``add_offset``,
``_FillValue``, ``missing_value``, ``units``, ``calendar``, ``coordinates``, ``bounds``,
``grid_mapping``) travels to the target unchanged. So ``xarray.open_zarr(target)`` decodes
exactly what ``xarray.open_dataset(source)`` decodes: xarray does the CF work, on both sides.

NetCDF-4 files are checked with h5py first, so that what Zarr cannot store (references,
compound values with variable-length fields) and filters that are not installed are refused
at open, naming the variable, instead of failing mid-copy.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from chunkwise.errors import MissingDependencyError, SpecError
from chunkwise.io.sources.readers import (
    _INTERNAL_ATTRS,
    H5_LIBRARY_BYTES,
    READ_BLOCK_BYTES,
    Source,
    SourceArray,
    SourceGroup,
    _attributes,
    _check_filters,
    _check_hdf5,
    _close_handle,
    _dimension_only,
    _extent,
    _h5_dtype,
    _h5_refusal,
    _Lazy,
    _missing,
    _name,
    _plural,
    _require,
    _scalar,
    read_block_chunks,
)

__all__ = ["is_cf_hdf5", "open_cf"]

#: NetCDF-3 flavours by the version byte after ``CDF``.
_NETCDF3 = {1: "NetCDF-3 (classic)", 2: "NetCDF-3 (64-bit offset)", 5: "NetCDF-3 (CDF-5)"}


def _open_dataset(path: str, engine: str, group: str, drop: tuple[str, ...] = ()) -> Any:
    """The raw (undecoded) dataset of one group, without the variables ``drop`` names; a
    picklable opener for :class:`_Lazy`."""
    import xarray as xr

    options: dict[str, Any] = {"group": group} if group else {}
    if drop:
        options["drop_variables"] = list(drop)
    return xr.open_dataset(
        path, engine=engine, decode_cf=False, mask_and_scale=False, decode_times=False,
        decode_timedelta=False, concat_characters=False, decode_coords=False, cache=False,
        **options,
    )  # fmt: skip


class _CfReader:
    """Reads boxes of one variable of an open (raw) dataset; safe from many threads."""

    def __init__(self, dataset: _Lazy, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]):
        self.dataset = dataset
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray[Any, Any]:
        with self.dataset.lock:
            variable = self.dataset.get().variables[self.name]
            values = variable[box].values if self.ndim else variable.values
        if self.dtype.kind == "T":  # variable-length strings arrive as str objects
            return np.asarray(values, dtype=self.dtype)
        return np.array(values, dtype=self.dtype, copy=True)


def is_cf_hdf5(path: str) -> bool:
    """Whether an HDF5 file says it follows the CF conventions (or was written by netCDF)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            conventions = handle.attrs.get("Conventions", b"")
            netcdf = "_NCProperties" in handle.attrs
    except OSError:
        return False
    text = conventions.decode(errors="replace") if isinstance(conventions, bytes) else conventions
    return netcdf or "CF" in str(text).upper()


def _netcdf3_engine(url: str, version: int) -> str:
    """``netcdf4`` when installed (reads through the netCDF-C library, no memory map), else
    ``scipy`` for classic and 64-bit offset files."""
    if importlib.util.find_spec("netCDF4") is not None:
        return "netcdf4"
    if version != 5 and importlib.util.find_spec("scipy") is not None:
        return "scipy"
    raise MissingDependencyError(
        f"reading {url!r} ({_NETCDF3.get(version, 'NetCDF-3')}) needs the netCDF4 package; "
        "install it with: pip install 'chunkwise[hdf5]'."
    )


def _magic(url: str, path: str) -> bytes:
    file = Path(path)
    if not file.exists():
        raise _missing(url)
    if not file.is_file():
        raise SpecError(f"source {url!r} is a folder, not a NetCDF file; give the file itself.")
    with open(file, "rb") as handle:
        return handle.read(4)


def _h5_layout(
    url: str, path: str, inner: str, skip: frozenset[str]
) -> tuple[list[str], str | None, dict[str, str]]:
    """Check a NetCDF-4 / HDF5 file with h5py: its groups (``""`` first), the variable
    ``inner`` names (if it is one), and what ``skip`` leaves out (path -> why); refuses
    what Zarr cannot store, naming it."""
    h5py = _require("h5py", url)
    _check_hdf5(url, path, "NetCDF-4", h5py)  # also HDF4 and files that are no HDF5
    with h5py.File(path, "r") as handle:
        if inner and inner not in handle:
            names = [repr(name) for name in _visible(handle, h5py)]
            raise SpecError(
                f"source {url!r} has no variable or group {inner!r}; it has "
                f"{', '.join(names[:6]) or 'none'}{', ...' if len(names) > 6 else ''}."
            )
        root = handle[inner] if inner else handle
        lone = isinstance(root, h5py.Dataset)
        groups = [inner] if not lone else []
        skipped: dict[str, str] = {}
        for name in [""] if lone else _visible(root, h5py):
            node = root if lone else root[name]
            full = inner if lone else f"{inner}/{name}".strip("/")
            if isinstance(node, h5py.Datatype):  # a named type (an enum), not a variable
                continue
            if isinstance(node, h5py.Group):
                groups.append(full)
                continue
            why = _h5_dtype(node)
            if isinstance(why, str) and full in skip and not lone:
                skipped[full] = why
                continue
            if isinstance(why, str):  # nothing is dropped silently: stop, naming it
                raise _h5_refusal(url, full, why, "variable", lone=lone)
            _check_filters(node)
        return groups, (inner if lone else None), skipped


def _visible(group: Any, h5py: Any) -> list[str]:
    """Paths under ``group`` of its groups and variables, without netCDF's stand-ins for
    dimensions that have no coordinate variable."""
    names: list[str] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Datatype):  # a named type (a netCDF enum), not a variable
            return
        if isinstance(node, h5py.Group) or not _dimension_only(node):
            names.append(name)

    group.visititems(visit)
    return names


def _variable_dtype(variable: Any) -> np.dtype[Any] | None:
    """The dtype a variable is copied as; ``None`` for Python objects that are not text.

    NetCDF's ``string`` type is variable-length: the backends give it as ``str`` objects or
    as NumPy unicode (``<U4``); it stays variable-length (NumPy strings). Text of fixed
    width is ``char`` in NetCDF, bytes of one character (``S1``), and stays so."""
    dtype = np.dtype(variable.dtype)
    if dtype.kind == "U" or (dtype.kind == "O" and variable.encoding.get("dtype") in (str, object)):
        # HDF5 variable-length text (ASCII or UTF-8); a first read that is not text fails
        # naming the variable (the h5py check at open has refused every other object)
        return np.dtypes.StringDType()
    return None if dtype.kind == "O" else dtype


def _array(
    dataset: Any, name: str, path: str, handle: _Lazy, *, library_bytes: int, records: bool
) -> SourceArray:
    variable = dataset.variables[name]
    shape = tuple(int(n) for n in variable.shape)
    dtype = _variable_dtype(variable)
    if dtype is None:
        raise SpecError(
            f"variable {path!r} holds Python objects that are not text, which Zarr cannot "
            "store; drop it or convert it to numbers or strings first."
        )
    encoding = variable.encoding
    stored_chunks = encoding.get("chunksizes")
    compressed = bool(encoding.get("compression") or encoding.get("zlib"))
    chunks = (
        tuple(int(c) for c in stored_chunks)
        if stored_chunks
        else read_block_chunks(shape, max(dtype.itemsize, 1), block_bytes=READ_BLOCK_BYTES)
    )
    fill = variable.attrs.get("_FillValue")
    return SourceArray(
        path=path,
        data=_CfReader(handle, name, shape, dtype),
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        dims=tuple(str(d) for d in variable.dims),
        attributes=_attributes(variable.attrs, drop=_INTERNAL_ATTRS, unwrap_singletons=True),
        fill_value=_scalar(fill) if fill is not None else None,
        # contiguous, uncompressed, not interleaved by record: any box reads alike
        flexible=not stored_chunks and not compressed and dtype.kind != "T" and not records,
        library_bytes=library_bytes,
    )


def open_cf(
    url: str,
    path: str,
    inner: str,
    *,
    hdf5_label: str = "NetCDF-4",
    skip: frozenset[str] = frozenset(),
) -> Source:
    """Open a NetCDF-3, NetCDF-4 or CF-HDF5 file (``#group`` or ``#group/variable``);
    ``hdf5_label`` names an HDF5-based file in descriptions; ``skip`` names variables Zarr
    cannot store to leave out (listed in ``skipped``) instead of refusing the file."""
    _require("xarray", url)
    magic = _magic(url, path)
    absolute = str(Path(path).resolve())
    if magic.startswith(b"CDF"):
        label = _NETCDF3.get(magic[3], "NetCDF-3")
        engine = _netcdf3_engine(url, magic[3])
        skipped: dict[str, str] = {}
        groups, lone = [""], inner or None
        # scipy memory-maps the file, and the pages it touches stay resident
        library = Path(absolute).stat().st_size if engine == "scipy" else H5_LIBRARY_BYTES
    else:
        label, engine, library = hdf5_label, "h5netcdf", H5_LIBRARY_BYTES
        _require("h5netcdf", url)
        groups, lone, skipped = _h5_layout(url, path, inner, skip)
    handles: list[_Lazy] = []
    try:
        return _source(url, path, absolute, engine, label, groups, lone, library, handles, skipped)
    except BaseException:
        for handle in handles:
            handle.close()
        raise


def _source(
    url: str,
    path: str,
    absolute: str,
    engine: str,
    label: str,
    groups: list[str],
    lone: str | None,
    library: int,
    handles: list[_Lazy],
    skipped: dict[str, str],
) -> Source:
    if lone is not None:  # one variable: ``file.nc#group/name``
        group, _, name = lone.rpartition("/")
        handle = _Lazy(functools.partial(_open_dataset, absolute, engine, group), _close_handle)
        handles.append(handle)
        dataset = _opened(url, handle, label)
        if name not in dataset.variables:
            names = sorted(map(repr, dataset.variables))
            raise SpecError(
                f"source {url!r} has no variable or group {lone!r}; it has "
                f"{', '.join(names[:6]) or 'none'}{', ...' if len(names) > 6 else ''}."
            )
        records = _is_record(dataset, name)
        array = _array(dataset, name, "", handle, library_bytes=library, records=records)
        return Source(
            url=url,
            kind="netcdf",
            description=f"{label} variable {_name(path)}#{lone} "
            f"({_extent(array.shape, array.dtype)})",
            arrays=(array,),
            groups=(),
            is_group=False,
            zarr_format=None,
            _closers=[h.close for h in handles],
        )
    top = groups[0]
    arrays: list[SourceArray] = []
    source_groups: list[SourceGroup] = []
    for group in groups:
        drop = tuple(
            name.rpartition("/")[2] for name in skipped if name.rpartition("/")[0] == group
        )
        opener = functools.partial(_open_dataset, absolute, engine, group, drop)
        handle = _Lazy(opener, _close_handle)
        handles.append(handle)
        dataset = _opened(url, handle, label)
        relative = group[len(top) :].strip("/")
        source_groups.append(
            SourceGroup(
                relative,
                _attributes(dataset.attrs, drop=_INTERNAL_ATTRS, unwrap_singletons=True),
            )
        )
        for name in dataset.variables:
            where = f"{relative}/{name}".strip("/")
            records = _is_record(dataset, str(name))
            array = _array(
                dataset, str(name), where, handle, library_bytes=library, records=records
            )
            arrays.append(array)
    if not arrays:
        raise SpecError(
            f"source {url!r} has no variables to convert; pick a file or group that holds arrays."
        )
    where = f"{_name(path)}#{top}" if top else _name(path)
    return Source(
        url=url,
        kind="netcdf",
        description=f"{label} {'group' if top else 'file'} {where} "
        f"({_plural(len(arrays), 'variable')})",
        arrays=tuple(sorted(arrays, key=lambda a: a.path)),
        groups=tuple(sorted(source_groups, key=lambda g: g.path)),
        is_group=True,
        zarr_format=None,
        skipped=tuple(f"{name} (--skip; it holds {why})" for name, why in skipped.items()),
        _closers=[h.close for h in handles],
    )


def _opened(url: str, handle: _Lazy, label: str) -> Any:
    try:
        return handle.get()
    except (OSError, ValueError, TypeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(
            f"source {url!r} is not a readable {label} file ({reason}); check that the file "
            "is complete and of the right type."
        ) from None


def _is_record(dataset: Any, name: str) -> bool:
    """A NetCDF-3 record variable: its values are interleaved with the other records'."""
    unlimited = dataset.encoding.get("unlimited_dims") or ()
    variable = dataset.variables[name]
    return (
        bool(variable.dims)
        and variable.dims[0] in unlimited
        and not variable.encoding.get("chunksizes")
    )
