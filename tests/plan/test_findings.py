"""The performance lint on plain values: each rule fires on its case and stays quiet otherwise."""

from __future__ import annotations

import shlex

import pytest

from chunkwise.model.storage import STORAGE_PRESETS
from chunkwise.plan.findings import (
    RULES,
    ArrayFacts,
    Finding,
    LintThresholds,
    StoreFacts,
    at_or_above,
    grow_chunks,
    grow_shards,
    lint,
    target_url,
)

LOCAL = STORAGE_PRESETS["local-ssd"]
S3 = STORAGE_PRESETS["s3"]
STORE = StoreFacts(url="data.zarr", remote=False, is_group=True, members=1, consolidated=True)
REMOTE = StoreFacts(
    url="s3://b/data.zarr", remote=True, is_group=True, members=3, consolidated=False
)

#: The cryo-ET tomogram of the issue: 16^3 float32 chunks, 288,000 of them.
TOMOGRAM = ArrayFacts(
    path="tomo", zarr_format=3, shape=(768, 1200, 1280), chunks=(16, 16, 16), shards=None,
    itemsize=4, dims=("z", "y", "x"), codec="zstd:3",
)  # fmt: skip


def run(
    *arrays: ArrayFacts, store: StoreFacts = STORE, storage: object = LOCAL
) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in lint(arrays, store, storage, LintThresholds()):  # type: ignore[arg-type]
        out.setdefault(f.rule, []).append(f)
    return out


def facts(shape: tuple[int, ...], chunks: tuple[int, ...], **kw: object) -> ArrayFacts:
    base: dict[str, object] = {"path": "a", "zarr_format": 3, "shards": None, "itemsize": 4}
    base.update(kw)
    return ArrayFacts(shape=shape, chunks=chunks, **base)  # type: ignore[arg-type]


def test_severities_are_ordered() -> None:
    assert at_or_above("error", "warning") and at_or_above("warning", "warning")
    assert not at_or_above("info", "warning")
    assert set(RULES) == {f"CW10{i}" for i in range(1, 10)}


def test_tomogram_of_16_cubed_chunks_on_s3_is_too_many_small_requests() -> None:
    found = run(TOMOGRAM, storage=S3)
    (small,) = found["CW101"]
    assert small.severity == "warning" and small.path == "tomo"
    assert small.evidence["requests_per_full_read"] == 288_000
    assert "16 KiB" in small.message and "288,000 requests" in small.message
    assert small.evidence["full_read_s"] >= 4 * small.evidence["grown_full_read_s"]  # type: ignore[operator]
    # The fix is a runnable command with bigger chunks of the same orientation.
    command = shlex.split(small.fix.split("e.g. ", 1)[1].split(";")[0])
    assert command[:4] == ["chunkwise", "rechunk", "data.zarr#tomo", "data-tomo-rechunked.zarr"]
    chunks = [int(c) for c in command[command.index("--chunks") + 1].split(",")]
    assert chunks == [int(c) for c in str(small.evidence["grown_chunks"]).split(",")]
    assert 4 * chunks[0] * chunks[1] * chunks[2] > 16 * 2**10


def test_small_chunks_are_judged_by_predicted_cost_not_by_a_size_floor() -> None:
    # The case: 256^3 float32 in 16^3 chunks on local disk reads whole in 1.73 s
    # against 0.20 s in 64^3 chunks (zarr 3.1.6); the model flags it on a local SSD too.
    cube = facts((256, 256, 256), (16, 16, 16), codec="zstd:3")
    (small,) = run(cube, storage=LOCAL)["CW101"]
    assert small.evidence["reader"] == LOCAL.reader.name
    assert LOCAL.reader.name in small.message and "local-ssd" in small.message
    assert "CW101" not in run(facts((256, 256, 256), (64, 64, 64), codec="zstd:3"), storage=LOCAL)
    big = facts((768, 1200, 1280), (64, 64, 64))  # 1 MiB chunks
    assert "CW101" not in run(big, storage=S3)
    tiny_array = facts((16, 16, 32), (16, 16, 16))  # one or two chunks: nothing to grow
    assert "CW101" not in run(tiny_array, storage=S3)


def test_small_inner_chunks_in_shards_are_only_noted() -> None:
    sharded = facts((768, 1200, 1280), (16, 16, 16), shards=(256, 256, 256))
    (small,) = run(sharded, storage=S3)["CW101"]
    assert small.severity == "info"


def test_tomogram_on_a_filesystem_has_too_many_objects_and_shards_fix_it() -> None:
    found = run(TOMOGRAM, storage=LOCAL)
    (many,) = found["CW103"]
    assert many.severity == "warning"
    assert many.evidence["objects"] == 288_000
    assert "--shards" in many.fix and "--zarr-format 3" in many.fix
    assert int(many.evidence["objects_with_shards"]) < 1000
    sharded = facts(TOMOGRAM.shape, TOMOGRAM.chunks, shards=(256, 256, 256))
    assert "CW103" not in run(sharded, storage=LOCAL)
    # Object stores take more objects before it matters.
    assert "CW103" not in run(TOMOGRAM, storage=S3)


def test_too_many_objects_counts_stored_objects_when_known() -> None:
    mostly_empty = facts(TOMOGRAM.shape, TOMOGRAM.chunks, data_objects=500)
    assert "CW103" not in run(mostly_empty)
    huge = facts((4096, 4096, 4096), (16, 16, 16))  # 16.8 M objects
    assert run(huge)["CW103"][0].severity == "error"


def test_chunks_too_big_for_memory() -> None:
    one_gib = facts((4, 16384, 16384), (1, 16384, 16384))
    (big,) = run(one_gib)["CW102"]
    assert big.severity == "warning" and "1 GiB" in big.message
    four_gib = facts((4, 16384, 32768), (1, 16384, 32768), itemsize=8)
    assert run(four_gib)["CW102"][0].severity == "error"
    assert "Blosc" in run(four_gib)["CW102"][0].message
    assert "CW102" not in run(facts((4, 4096, 4096), (1, 4096, 4096)))  # 64 MiB
    # 64 MiB chunks in 4 GiB shards: a writer holds the whole shard.
    big_shards = facts((64, 4096, 4096), (1, 4096, 4096), shards=(64, 4096, 4096))
    (shard,) = run(big_shards)["CW102"]
    assert shard.severity == "warning" and "shards 64x4096x4096 are 4 GiB" in shard.message
    assert "unsharded" in shard.fix and "--chunks 1,4096,4096 --zarr-format 3" in shard.fix
    small_chunks = facts((64, 4096, 4096), (1, 512, 512), shards=(64, 4096, 4096))
    assert "--chunks 1,512,512 --shards" in run(small_chunks)["CW102"][0].fix


def test_coordinate_chunked_by_one() -> None:
    data = facts((365, 180, 360), (365, 90, 90), path="t2m", dims=("time", "lat", "lon"))
    time = facts((365,), (1,), path="time", dims=("time",), itemsize=8)
    (coord,) = run(data, time)["CW104"]
    assert coord.severity == "warning" and coord.path == "time"
    assert "365 chunks of 1" in coord.message
    assert "--chunks 365" in coord.fix
    whole = facts((365,), (365,), path="time", dims=("time",), itemsize=8)
    assert "CW104" not in run(data, whole)
    # A 1-D array that names no dimension is not a coordinate.
    other = facts((365,), (1,), path="events", dims=("event_id",))
    assert "CW104" not in run(data, other)


def test_v2_arrays_with_many_objects_point_to_sharding() -> None:
    v2 = facts(TOMOGRAM.shape, TOMOGRAM.chunks, zarr_format=2)
    found = run(v2)
    (shard,) = found["CW105"]
    assert shard.severity == "warning" and "no sharding" in shard.message
    assert "--zarr-format 3" in shard.fix and "--shards" in shard.fix
    assert "CW103" not in found  # one finding per problem
    few = facts((200, 1000), (10, 10), zarr_format=2)  # 2,000 objects
    assert "CW105" not in run(few)
    some = facts((1000, 2000), (10, 10), zarr_format=2)  # 20,000 objects
    assert run(some)["CW105"][0].severity == "info"
    assert "CW105" not in run(facts((1000, 2000), (10, 10), zarr_format=3))


def test_unconsolidated_remote_group() -> None:
    data = facts((10, 10), (10, 10))
    (remote,) = run(data, store=REMOTE, storage=S3)["CW106"]
    assert remote.severity == "warning" and remote.path == ""
    assert "consolidate_metadata" in remote.fix
    consolidated = StoreFacts("s3://b/x.zarr", True, True, 3, True)
    assert "CW106" not in run(data, store=consolidated, storage=S3)
    local = StoreFacts("x.zarr", False, True, 3, False)
    assert "CW106" not in run(data, store=local)


def test_stale_consolidated_metadata() -> None:
    stale = StoreFacts("x.zarr", False, True, 3, True, stale=("'a' shape is [1] ... but [2]",))
    (found,) = run(store=stale)["CW107"]
    assert found.severity == "error" and "1 difference" in found.message
    assert "CW107" not in run(store=STORE)


def test_dask_task_graph() -> None:
    (tasks,) = run(facts((2000, 2000), (1, 1)))["CW108"]  # 4 M chunks
    assert tasks.severity == "error" and "4,000,000 tasks" in tasks.message
    assert run(TOMOGRAM)["CW108"][0].severity == "warning"
    assert "CW108" not in run(facts((2000, 2000), (100, 100)))


def test_uneven_chunks() -> None:
    (uneven,) = run(facts((1001, 50), (100, 50), dims=("t", "x")))["CW109"]
    assert uneven.severity == "info" and "last chunk of 1" in uneven.message
    assert "a chunk of 91 along t splits it into 11 chunks" in uneven.fix
    assert "CW109" not in run(facts((1000, 50), (100, 50)))
    assert "CW109" not in run(facts((1050, 50), (100, 50)))  # half a chunk is not a sliver


def test_findings_are_sorted_most_severe_first() -> None:
    v2 = facts(TOMOGRAM.shape, TOMOGRAM.chunks, zarr_format=2)
    stale = StoreFacts("x.zarr", False, True, 3, True, stale=("x",))
    found = lint([v2], stale, LOCAL, LintThresholds())
    order = [f.severity for f in found]
    assert order == sorted(order, key=["error", "warning", "info"].index)
    assert found[0].rule == "CW107"


@pytest.mark.parametrize(
    ("shape", "chunks"), [((768, 1200, 1280), (16, 16, 16)), ((100, 7), (1, 7)), ((5,), (5,))]
)
def test_suggested_chunks_and_shards_are_valid(
    shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    grown = grow_chunks(shape, chunks, 4, 2**20)
    assert all(c <= n for c, n in zip(grown, shape, strict=True))
    shards = grow_shards(shape, chunks, 4, 64 * 2**20)
    assert all(
        s % c == 0 and s <= -(-n // c) * c for s, c, n in zip(shards, chunks, shape, strict=True)
    )


def test_targets_of_suggested_commands_are_writable_stores() -> None:
    """rechunk cannot write a zip: a zip's commands write a directory store next to it."""
    assert target_url("data.zarr", "tomo", "roi") == "data-tomo-roi.zarr"
    assert target_url("s3://b/data.zarr/", "", "roi") == "s3://b/data-roi.zarr"
    assert target_url("/d/v1.0/data", "", "roi") == "/d/v1.0/data-roi.zarr"
    assert target_url("/d/archive.zip", "a/b", "sharded") == "/d/archive-a-b-sharded.zarr"
    assert target_url("/d/ARCHIVE.ZIP", "", "x") == "/d/ARCHIVE-x.zarr"
