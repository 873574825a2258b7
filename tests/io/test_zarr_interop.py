"""What advise prints must be true in real zarr-python 3 (and xarray)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from packaging.version import Version

from chunkwise.io.codecs import create_array
from chunkwise.model import ArraySpec, Layout, parse_codec
from chunkwise.report.snippets import xarray_snippet, zarr_snippet


def smooth_volume(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    """Smooth structure plus a little noise, like real measurements; integers span ~1000 levels."""
    grids = np.meshgrid(*[np.linspace(0, 3, n) for n in shape], indexing="ij")
    rng = np.random.default_rng(0)
    data = np.sin(grids[0]) * np.cos(grids[1]) + 0.1 * grids[-1] + rng.normal(0, 0.01, shape)
    if np.dtype(dtype).kind in "iu":
        data = (data + 2) * 500
    return data.astype(dtype)


def test_numcodecs_is_new_enough_for_blosc_typesize() -> None:
    assert Version(numcodecs.__version__) >= Version("0.16")


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint16"])
def test_byte_shuffle_is_effective(zarr_format: int, dtype: str) -> None:
    """numcodecs 0.15 with zarr 3.1 wrote Blosc with typesize 1: shuffle did nothing."""
    array = ArraySpec.create([48, 48, 48], dtype, ["z", "y", "x"])
    data = smooth_volume(array.shape, dtype)
    sizes = {}
    for shuffle in ("noshuffle", "shuffle"):
        layout = Layout.create(
            array,
            (24, 24, 24),
            codec=parse_codec(f"blosc:zstd:5:{shuffle}"),
            zarr_format=zarr_format,
        )
        arr = create_array(zarr.storage.MemoryStore(), array, layout)
        arr[:] = data
        np.testing.assert_array_equal(arr[:], data)
        sizes[shuffle] = arr.nbytes_stored()
    assert sizes["shuffle"] < 0.95 * sizes["noshuffle"], sizes


SNIPPET_ARRAY = ArraySpec.create([32, 64, 64], "float32", ["z", "y", "x"])
SNIPPET_LAYOUTS = [
    Layout.create(SNIPPET_ARRAY, chunks, shards=shards, codec=parse_codec(codec), zarr_format=fmt)
    for codec, fmt, chunks, shards in [
        ("blosc:zstd:5:shuffle", 3, (8, 16, 16), (16, 32, 32)),
        ("blosc:lz4:1:bitshuffle", 3, (8, 16, 16), None),
        ("zstd:3", 3, (16, 16, 16), (16, 32, 32)),
        ("gzip:6", 2, (8, 32, 32), None),
        ("blosc:zstd:5:shuffle", 2, (8, 16, 16), None),
        ("none", 2, (16, 16, 16), None),
    ]
]
snippet_layouts = pytest.mark.parametrize("layout", SNIPPET_LAYOUTS, ids=Layout.label)


def _compressor_config(arr: zarr.Array) -> dict[str, Any]:
    if arr.metadata.zarr_format == 2:
        comp = arr.metadata.compressor
        return {} if comp is None else comp.get_config()
    codecs = arr.compressors
    return {} if not codecs else codecs[0].to_dict()


@snippet_layouts
def test_zarr_snippet_creates_exactly_the_layout(layout: Layout, tmp_path: Path) -> None:
    array, zarr_format = SNIPPET_ARRAY, layout.zarr_format
    store = tmp_path / "snippet.zarr"
    namespace: dict[str, Any] = {}
    exec(zarr_snippet(array, layout, store=str(store)), namespace)
    arr = namespace["array"]
    assert arr.chunks == layout.chunks
    assert arr.shards == layout.shards
    assert arr.metadata.zarr_format == zarr_format
    reference = create_array(tmp_path / "adapter.zarr", array, layout)
    assert _compressor_config(arr) == _compressor_config(reference)
    expected = layout.to_dict(array)
    if zarr_format == 2:
        assert arr.metadata.compressor == (
            None if expected["compressor"] is None else numcodecs.get_codec(expected["compressor"])
        )
    data = smooth_volume(array.shape)
    arr[:] = data
    np.testing.assert_array_equal(zarr.open_array(str(store), mode="r")[:], data)


@snippet_layouts
def test_xarray_snippet_writes_the_layout(layout: Layout, tmp_path: Path) -> None:
    array, zarr_format = SNIPPET_ARRAY, layout.zarr_format
    data = smooth_volume(array.shape)
    ds = xr.Dataset({"data": (("z", "y", "x"), data)})
    snippet = xarray_snippet(array, layout).replace('"data.zarr"', repr(str(tmp_path / "x.zarr")))
    with pytest.warns() if zarr_format == 3 else contextlib.nullcontext():
        exec(snippet, {"ds": ds})
    arr = zarr.open_array(str(tmp_path / "x.zarr" / "data"), mode="r")
    assert arr.chunks == layout.chunks
    assert arr.shards == layout.shards
    np.testing.assert_array_equal(arr[:], data)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "x.zarr")["data"].values, data)


def test_layout_json_is_what_zarr_writes(tmp_path: Path) -> None:
    array = ArraySpec.create([32, 64, 64], "uint16", ["z", "y", "x"])
    layout = Layout.create(
        array, (8, 16, 16), shards=(16, 32, 64), codec=parse_codec("blosc:zstd:5:shuffle")
    )
    create_array(tmp_path / "a.zarr", array, layout)
    written = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    expected = layout.to_dict(array)
    sharding = written["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    assert (
        sharding["configuration"]["chunk_shape"]
        == expected["codecs"][0]["configuration"]["chunk_shape"]
    )
    inner = sharding["configuration"]["codecs"]
    assert inner[-1]["name"] == "blosc"
    assert inner[-1]["configuration"]["typesize"] == 2
    assert inner[-1]["configuration"]["shuffle"] == "shuffle"
    assert written["dimension_names"] == ["z", "y", "x"]
    assert written["chunk_key_encoding"] == expected["chunk_key_encoding"]
    assert (
        sharding["configuration"]["index_location"]
        == expected["codecs"][0]["configuration"]["index_location"]
    )
    assert layout.data_objects(array) == 2 * 2 * 1
