"""Rechunk on a real Dask cluster gives the identical result, and both executors keep
measured peak resident memory within the budget (over the process's own baseline)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from chunkwise import api
from chunkwise.errors import ConstraintError

distributed = pytest.importorskip("distributed")

MiB = 2**20


def objects(path: Path) -> dict[str, bytes]:
    """Every stored object but the metadata (its attributes carry a creation time)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


def make_maps(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Smooth maps plus noise, one (1, y, x) chunk per time step, Blosc zstd."""
    t, y, x = np.meshgrid(*(np.arange(n, dtype="float32") for n in shape), indexing="ij")
    rng = np.random.default_rng(3)
    data = (np.sin(x / 9 + t / 5) * np.cos(y / 7) * 10).astype("float32")
    data += rng.standard_normal(shape).astype("float32") * 0.05
    zarr.create_array(
        path, data=data, chunks=(1, *shape[1:]),
        compressors=BloscCodec(cname="zstd", clevel=5, shuffle="shuffle", typesize=4),
    )  # fmt: skip
    return data


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real LocalCluster with 2 single-threaded worker processes."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        memory_limit=0,
    ) as local:  # fmt: skip
        yield local.scheduler_address


@pytest.mark.parametrize("engine", ["zarr", "zarrs"])
def test_dask_gives_the_identical_result(tmp_path: Path, cluster: str, engine: str) -> None:
    """Byte for byte with zarr-python. zarrs places a shard's inner chunks in the order
    their encodes finish, so its shards hold the same chunks at other offsets: the same
    objects, each decoding to the same values."""
    data = make_maps(tmp_path / "maps.zarr", (64, 96, 80))
    layout = {"chunks": (64, 8, 8), "shards": (64, 16, 40), "threads": 1, "engine": engine}
    with pytest.raises(ConstraintError) as refused:  # the least memory: two passes
        api.rechunk(tmp_path / "maps.zarr", "memory://", max_mem="1KiB", dry_run=True, **layout)
    budget = str(refused.value).rsplit("--max-mem ", 1)[1].rstrip(".")
    options = {**layout, "max_mem": budget}
    local = api.rechunk(tmp_path / "maps.zarr", tmp_path / "local.zarr", **options)
    on_dask = api.rechunk(tmp_path / "maps.zarr", tmp_path / "dask.zarr", dask=cluster, **options)
    assert len(local.plan.jobs[0].plan.stages) == 2  # type: ignore[union-attr]
    assert "Dask at tcp://" in on_dask.plan.executor  # type: ignore[union-attr]
    assert zarr.open_array(tmp_path / "dask.zarr")[...].tobytes() == data.tobytes()
    mine, theirs = objects(tmp_path / "dask.zarr"), objects(tmp_path / "local.zarr")
    if engine == "zarr":
        assert mine == theirs
    else:
        assert mine.keys() == theirs.keys()
        local_values = zarr.open_array(tmp_path / "local.zarr")[...]
        assert local_values.tobytes() == data.tobytes()
    assert not (tmp_path / "dask.zarr" / ".chunkwise-rechunk").exists()


def test_dask_local_cluster_from_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chunkwise.cli.main import cli

    data = make_maps(tmp_path / "maps.zarr", (16, 24, 20))
    result = CliRunner().invoke(
        cli,
        ["rechunk", str(tmp_path / "maps.zarr"), str(tmp_path / "out.zarr"), "--chunks",
         "16,8,4", "--dask", "local:2", "--verify", "full"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"largest worker\), [\d.]+ [KM]iB above the start of the run", result.output)
    assert zarr.open_array(tmp_path / "out.zarr")[...].tobytes() == data.tobytes()


MEASURE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, psutil, zarr
    from chunkwise import api
    from chunkwise.rechunking.executor import peak_rss as peak

    src, tmp, budget, dask = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] or None

    def rss_now():
        return psutil.Process().memory_info().rss

    def main():
        # Warm up: every module and pool a run uses is loaded, on a tiny array.
        zarr.create_array(tmp + "/tiny.zarr", data=np.ones((4, 8, 8), "float32"), chunks=(1, 8, 8))
        client = None
        if dask:
            from distributed import Client
            client = Client(dask)
            api.rechunk(tmp + "/tiny.zarr", tmp + "/tiny-d.zarr", chunks=(4, 2, 2), dask=dask)
            before = client.run(rss_now)
        else:
            api.rechunk(tmp + "/tiny.zarr", tmp + "/tiny-l.zarr", chunks=(4, 2, 2))
            before = {"self": rss_now()}
        result = api.rechunk(src, tmp + "/out.zarr", chunks=(128, 16, 16), max_mem=budget,
                             dask=dask, verify="none")
        after = client.run(peak) if client is not None else {"self": peak()}
        print(json.dumps({"baseline": before, "peak": after, "added": result.peak_added,
                          "projected": result.plan.peak_memory, "budget": result.plan.max_mem,
                          "passes": len(result.plan.jobs[0].plan.stages)}))

    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.parametrize("executor", ["threads", "dask"])
def test_peak_resident_memory_stays_within_the_budget(
    tmp_path: Path, executor: str, cluster: str
) -> None:
    """The issue's map -> time-series job, smaller: 128x256x256 float32 (32 MiB) from
    (1, 256, 256) maps to (128, 16, 16) series with a 28 MiB budget, measured as peak RSS
    above the warmed-up process (each Dask worker: above its own baseline)."""
    make_maps(tmp_path / "maps.zarr", (128, 256, 256))
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    budget = 28 * MiB
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "maps.zarr"), str(tmp_path), str(budget),
         cluster if executor == "dask" else ""],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["passes"] == 2 and report["projected"] <= budget
    # What the run reports as its own rise ("N MiB above the start of the run") is
    # within the budget too, and is a real measurement.
    assert 0 < report["added"] <= budget
    for worker, peak in report["peak"].items():
        used = peak - report["baseline"][worker]
        assert used <= budget, f"{worker}: {used / MiB:.1f} MiB above baseline, budget 28 MiB"


def test_a_pyramid_on_dask_is_the_pyramid_on_threads(tmp_path: Path, cluster: str) -> None:
    """Each level's tasks read the level below from the target on the workers (a level
    reader is pickled with the target's store): the same objects as on threads."""
    data = make_maps(tmp_path / "maps.zarr", (32, 96, 80))
    options = {"ome_zarr": True, "levels": 3, "chunks": (8, 32, 32)}
    local = api.convert(tmp_path / "maps.zarr", tmp_path / "local.zarr", **options)
    on_dask = api.convert(tmp_path / "maps.zarr", tmp_path / "dask.zarr", dask=cluster, **options)
    assert on_dask.levels_checked > 0  # type: ignore[union-attr]
    assert objects(tmp_path / "dask.zarr") == objects(tmp_path / "local.zarr")
    assert zarr.open_array(tmp_path / "dask.zarr" / "0")[...].tobytes() == data.tobytes()
    assert local.plan.pyramid == on_dask.plan.pyramid  # type: ignore[union-attr]
