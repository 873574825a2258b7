"""Reader profiles: the model prices the reader the user runs, with no folklore floors.

zarr-python 3.1 (Python 3.11) reads a partial shard as an index request and then one
request per inner chunk, in sequence, and reads every shard before writing it;
zarr-python 3.4 (Python >= 3.12) fetches the inner chunks concurrently in merged ranged
requests and writes whole shards without reading them. The default reader is the one
installed here, and every report names the reader it priced.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from zarr.storage import MemoryStore

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.errors import SpecError
from chunkwise.io.installed import installed_reader, zarr_version
from chunkwise.io.stores import EmulatedStore
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import default_codec_profile, parse_codec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import READER_PRESETS, STORAGE_PRESETS
from chunkwise.model.workload import Workload
from chunkwise.spec import parse_reader, parse_storage

MiB = 2**20
VOLUME = {"shape": [256, 256, 256], "dtype": "float32", "dims": ["z", "y", "x"]}
ROI = [{"op": "region", "extent": {"z": 32, "y": 32, "x": 32}}]
SLOW_STORE = {"latency": "20ms", "bandwidth": "100MB/s"}


def test_the_default_reader_is_the_installed_zarr_python() -> None:
    expected = "zarr-python-3.1" if zarr_version() < (3, 2) else "zarr-python-3.4"
    assert installed_reader() == expected
    # The project pins zarr-python 3.1 on Python 3.11 and 3.4 on Python >= 3.12.
    assert expected == ("zarr-python-3.1" if sys.version_info < (3, 12) else "zarr-python-3.4")
    assert parse_storage("s3").reader.name == expected
    assert parse_storage(SLOW_STORE).reader.name == expected
    assert parse_reader("zarr-python").name == expected
    advice = chunkwise.advise(array=VOLUME, workload=ROI, storage="s3")
    assert advice.storage.reader.name == expected
    assert f"read by {expected}" in repr(advice)
    assert advice.to_dict()["storage"]["reader"]["name"] == expected


def test_the_zarrs_codec_pipeline_is_detected() -> None:
    with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
        assert installed_reader() == "zarrs"
    assert installed_reader() != "zarrs"


def test_the_reader_can_be_named_in_the_spec_and_on_the_command_line() -> None:
    for name in READER_PRESETS:
        advice = chunkwise.advise(array=VOLUME, workload=ROI, storage="s3", reader=name)
        assert advice.storage.reader.name == name
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "256,256,256", "--dtype", "float32", "--workload", "roi",
         "--storage", "s3", "--reader", "zarr-python-3.4", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["storage"]["reader"]["name"] == "zarr-python-3.4"
    text = CliRunner().invoke(
        cli,
        ["advise", "--shape", "256,256,256", "--dtype", "float32", "--workload", "roi",
         "--storage", "s3", "--reader", "tensorstore"],
    )  # fmt: skip
    assert "read by tensorstore" in " ".join(text.output.split())


def test_an_unknown_reader_is_one_sentence() -> None:
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "64,64", "--dtype", "uint8", "--workload", "roi", "--reader", "zarr9"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "reader 'zarr9' is unknown; use one of zarr-python-3.1" in result.output
    assert "Traceback" not in result.output


def test_no_preset_carries_an_object_size_floor() -> None:
    for name, storage in STORAGE_PRESETS.items():
        assert storage.object_bytes_min == 0, name
    assert parse_storage(SLOW_STORE).object_bytes_min == 0


@pytest.mark.parametrize("reader", [None, *READER_PRESETS])
def test_a_20ms_store_may_get_chunks_below_1_mib_for_small_regions(reader: str | None) -> None:
    """Eight 128 KiB chunks fetched in one wave beat one 1 MiB chunk on a slow store: no
    floor overrules the model."""
    advice = chunkwise.advise(array=VOLUME, workload=ROI, storage=SLOW_STORE, reader=reader)
    assert advice.best.chunk_bytes < 1 * MiB
    assert not [line for line in advice.best.rationale if "bound this choice" in line]


def test_a_user_size_constraint_binds_and_the_rationale_prices_it() -> None:
    free = chunkwise.advise(array=VOLUME, workload=ROI, storage=SLOW_STORE)
    bound = chunkwise.advise(
        array=VOLUME,
        workload=ROI,
        storage=SLOW_STORE,
        constraints={"object_bytes": {"min": "4MiB"}},
    )
    assert bound.best.object_bytes >= 4 * MiB
    (binding,) = [line for line in bound.best.rationale if "bound this choice" in line]
    assert binding.startswith("object_bytes (")
    assert bound.best.cost.weighted_s > free.best.cost.weighted_s


ARRAY = ArraySpec.create([256, 256, 256], "float32", ["z", "y", "x"])
NONE = parse_codec("none")
SHARDED = Layout.create(ARRAY, (32, 32, 32), shards=(128, 128, 128), codec=NONE)


def _cost(reader: str, ops: list[dict[str, object]], layout: Layout = SHARDED) -> dict[str, float]:
    storage = replace(
        STORAGE_PRESETS["s3"], latency_s=0.020, bandwidth_Bps=10e9, stream_bandwidth_Bps=100e6,
        concurrency=1000,
    ).with_reader(READER_PRESETS[reader])  # fmt: skip
    inputs = CostInputs(ARRAY, storage, NONE, default_codec_profile(NONE))
    (op,) = estimate_layout(layout, Workload.from_spec(ops, ARRAY), inputs).ops.values()
    return op


def test_zarr_34_reads_a_partial_shard_in_two_rounds_of_merged_requests() -> None:
    old, new = _cost("zarr-python-3.1", ROI), _cost("zarr-python-3.4", ROI)
    # 3.1: the index, then each inner chunk in turn (about 7 round trips); 3.4: two.
    assert old["latency_s"] == pytest.approx(7.1 * 0.020, rel=0.05)
    assert new["latency_s"] == pytest.approx(2 * 0.020, rel=0.01)
    # Merged ranges: fewer requests, and the gaps between chunks come along.
    assert new["requests"] < old["requests"] / 2
    assert new["bytes_fetched"] > 1.5 * old["bytes_fetched"]
    # The model: 2.9 GETs, 2.15 MiB, 57 ms per region. benchmarks/bench_reader_model.py
    # measures 3.3 GETs, 1.5 MiB and 54 ms with zarr 3.4.2 through the emulated store.
    assert new["bytes_fetched"] == pytest.approx(2.17 * MiB, rel=0.25)


def test_zarr_34_writes_whole_shards_without_reading_them() -> None:
    write = [{"op": "write"}]
    old, new = _cost("zarr-python-3.1", write), _cost("zarr-python-3.4", write)
    assert old["get_requests"] == old["put_requests"] == 8  # 2x2x2 shards, each read first
    assert new["get_requests"] == 0 and new["put_requests"] == 8
    ragged = Layout.create(ARRAY, (32, 32, 32), shards=(96, 96, 96), codec=NONE)
    edge = _cost("zarr-python-3.4", write, ragged)
    # 3x3x3 shards; only the 19 that reach past the array's end are read before writing.
    assert edge["get_requests"] == 27 - 8


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "write"}],
        ROI,
        [{"op": "plane", "dims": ["y", "x"]}],
        [{"op": "point", "count": 64}],
        [{"op": "append", "dim": "z", "size": 16}],
    ],
    ids=lambda ops: str(ops[0]["op"]),
)
@pytest.mark.parametrize("layout", [SHARDED, Layout.create(ARRAY, (64, 64, 64), codec=NONE)])
def test_a_reader_time_per_call_and_per_request_add_to_every_operation(
    ops: list[dict[str, object]], layout: Layout
) -> None:
    storage = STORAGE_PRESETS["s3"].with_reader(
        parse_reader({"preset": "zarr-python-3.4", "per_call": "2.5ms", "per_request": "0.5ms"})
    )
    inputs = CostInputs(ARRAY, storage, NONE, default_codec_profile(NONE))
    no_call = replace(READER_PRESETS["zarr-python-3.4"], per_call_s=0.0, per_request_s=0.0)
    plain = replace(inputs, storage=storage.with_reader(no_call))
    workload = Workload.from_spec(ops, ARRAY)
    (with_call,) = estimate_layout(layout, workload, inputs).ops.values()
    (without,) = estimate_layout(layout, workload, plain).ops.values()
    added = 2.5e-3 + 0.5e-3 * without["requests"]
    assert without["requests"] >= 1
    assert with_call["seconds"] - without["seconds"] == pytest.approx(added)
    assert with_call["cpu_s"] - without["cpu_s"] == pytest.approx(added)
    for count in ("chunks", "requests", "bytes_fetched", "bytes_written"):
        assert with_call[count] == without[count]


def test_a_negative_per_call_is_one_sentence() -> None:
    with pytest.raises(SpecError, match="must not be negative"):
        replace(READER_PRESETS["tensorstore"], per_request_s=-1e-3)


def test_emulated_store_counts_what_the_installed_zarr_really_requests() -> None:
    """The emulated store sees every request on both zarr lines (zarr 3.4 would otherwise
    read through the wrapped store's sync methods and ``get_ranges``), and the counts
    follow the installed reader's model."""
    data = np.arange(256**3, dtype="float32").reshape(256, 256, 256)
    memory = MemoryStore()
    arr = zarr.create_array(
        memory, shape=data.shape, dtype="float32", chunks=(32, 32, 32), shards=(128, 128, 128),
        compressors=None,
    )  # fmt: skip
    arr[...] = data
    store = EmulatedStore(memory)
    view = zarr.open_array(store, mode="r")
    before = store.counts.gets
    assert np.array_equal(view[8:40, 8:40, 8:40], data[8:40, 8:40, 8:40])
    gets = store.counts.gets - before
    # One shard, 8 inner chunks (2x2x2, not aligned to a Morton block of 2^3).
    if installed_reader() == "zarr-python-3.1":
        assert gets == 1 + 8
    else:
        assert 2 <= gets <= 1 + 8  # the index, then merged ranges
        assert store.counts.bytes_read > 8 * 32**3 * 4


def test_bench_on_the_emulated_store_prices_the_installed_reader() -> None:
    report = chunkwise.bench(
        {"array": {"shape": [16, 32, 32], "dtype": "float32"}, "workload": "roi",
         "codec": "zstd:3", "candidates": [{"chunks": [8, 16, 16]}]},
        data="synthetic:smooth", store="emulated://?latency=1ms", only_candidates=True,
        repeats=1, warm=False,
    )  # fmt: skip
    assert report.storage.reader.name == installed_reader()
