"""``rechunk --dry-run`` for data that outgrows one machine: a 10 TB ERA5-like array on the
tests' real S3 server, planned for 64 Dask workers, prints tasks, requests, bytes, the
request rate per prefix against S3's limits, dollars and time, writes nothing and starts no
cluster; ``--workers`` misuse is one sentence.

The array is created metadata-only (no chunk is written): float32 (65,000, 37, 721, 1440),
7.4 years of hourly 0.25° fields on 37 pressure levels, 9.99e12 bytes, in ARCO-ERA5's "map"
chunks of one hour (1, 37, 721, 1440), 147 MiB each. The target is time-series chunks of
(8760, 1, 32, 32): one year of hours at one level on a 32 x 32 tile (8° x 8°), 35.9 MB raw
(about 27 MB stored), so that a year at a grid point is one object, a point's whole series is
8 GETs, and each object is large enough (0.3 s at S3's ~90 MB/s per stream) that its 20 ms
first-byte latency is small. 8 GiB per worker is a usual Dask worker's memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from s3server import S3Server
from zarr.codecs import BloscCodec

from chunkwise import api
from chunkwise.cli.main import cli
from chunkwise.errors import SpecError
from chunkwise.io.stores import _fsspec_store, close_sessions, store_keys

ERA5_SHAPE = (65_000, 37, 721, 1440)
ERA5_CHUNKS = (1, 37, 721, 1440)
SERIES = "8760,1,32,32"


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything starts or connects to a Dask cluster."""
    import distributed

    from chunkwise.rechunking import dask_executor

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dry run started or connected to a Dask cluster")

    monkeypatch.setattr(dask_executor, "connect", refuse)
    monkeypatch.setattr(distributed, "LocalCluster", refuse)
    monkeypatch.setattr(distributed, "Client", refuse)


def _keys(url: str, options: dict[str, Any]) -> list[str]:
    store = _fsspec_store(url, options)
    try:
        return sorted(store_keys(store))
    finally:
        close_sessions([store])


@pytest.fixture
def era5(s3_bucket: tuple[S3Server, str]) -> Iterator[tuple[S3Server, str, list[str]]]:
    """The ERA5-like array's metadata on S3: ``(server, its url, the CLI's S3 options)``."""
    server, bucket = s3_bucket
    options = server.storage_options()
    url = f"{bucket}/era5.zarr"
    store = _fsspec_store(url, options)
    try:
        zarr.create_array(
            store, shape=ERA5_SHAPE, chunks=ERA5_CHUNKS, dtype="float32", fill_value=np.nan,
            compressors=BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),
            dimension_names=("time", "level", "latitude", "longitude"),
        )  # fmt: skip
    finally:
        close_sessions([store])
    cli_options = [
        "--endpoint-url", server.endpoint_url,
        "--storage-option", f"key={options['key']}",
        "--storage-option", f"secret={options['secret']}",
    ]  # fmt: skip
    yield server, url, cli_options


def dry_run(era5: tuple[S3Server, str, list[str]], *extra: str) -> tuple[int, str, str]:
    """Run the 10 TB dry run; returns exit code, output and the target's URL."""
    server, url, options = era5
    target = url.replace("era5.zarr", "era5-series.zarr")
    args = [
        "rechunk", url, target, "--chunks", SERIES, "--codec", "blosc:zstd:5:shuffle",
        "--max-mem", "8GiB", "--dry-run", *options, *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, env={"AWS_DEFAULT_REGION": server.region})
    return result.exit_code, result.output, target


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # zarr: consolidated v3 metadata


@pytest.mark.slow
def test_ten_terabytes_on_s3_for_64_workers(
    era5: tuple[S3Server, str, list[str]], no_cluster: None
) -> None:
    server, url, _ = era5
    before = _keys(url.rsplit("/", 1)[0], server.storage_options())
    assert before == ["era5.zarr/zarr.json"]  # metadata only: no chunk exists
    code, out, _ = dry_run(era5, "--workers", "64")
    assert code == 0, out
    lines = out.splitlines()
    assert "executor: Dask (64 workers x 1 thread; planned, none started)" in out
    assert "65000x37x721x1440 float32 (9.08 TiB), chunks 1x37x721x1440 -> 8760x1x32x32" in out
    assert "two passes through an intermediate array" in out
    estimate = next(line for line in lines if "estimate for" in line).strip()
    assert re.fullmatch(
        r"estimate for 64 workers x 1 thread on s3: [\d,]+ tasks, [\d,]+ GET and [\d,]+ PUT "
        r"requests \(\$[\d.,]+\); reads [\d.]+ TiB and writes [\d.]+ TiB stored \(read-back "
        r"included\)",
        estimate,
    ), estimate
    time_line = next(line for line in lines if line.strip().startswith("time: about"))
    assert re.search(r"to-intermediate .*-bound; from-intermediate .*-bound\)$", time_line)
    rates = next(line for line in lines if "peak request rates" in line)
    assert "within 5,500 GET/s and 3,500 PUT/s per partitioned prefix" in rates
    assert "warning" not in out
    # Nothing was written anywhere in the bucket: not the target, not a run record.
    assert _keys(url.rsplit("/", 1)[0], server.storage_options()) == before
    # The JSON says the same, with every stage's requests, rates and limits.
    code, out, _ = dry_run(era5, "--workers", "64", "--json")
    assert code == 0, out
    doc = json.loads(out)["arrays"][0]["estimate"]
    assert doc["workers"] == 64 and doc["threads_per_worker"] == 1
    assert doc["target_storage"] == "s3" and doc["source_storage"] == "s3"
    assert [s["name"] for s in doc["stages"]] == ["to-intermediate", "from-intermediate"]
    assert doc["over_limit"] is False and doc["workers_within_limits"] is None
    assert doc["get_requests"] == sum(s["get_requests"] for s in doc["stages"])
    first = doc["stages"][0]["prefixes"]
    assert first[0]["prefix"] == "source" and first[0]["get_requests"] == ERA5_SHAPE[0]
    assert first[0]["get_limit_per_s"] == 5500 and first[0]["put_limit_per_s"] == 3500
    assert doc["usd"] > 0 and doc["seconds"] > 0


@pytest.mark.slow
def test_more_workers_exceed_s3s_per_prefix_limit_and_say_what_to_do(
    era5: tuple[S3Server, str, list[str]], no_cluster: None
) -> None:
    code, out, _ = dry_run(era5, "--workers", "256")
    assert code == 0, out
    warning = next(line for line in out.splitlines() if "warning:" in line).strip()
    assert re.match(
        r"warning: (?:[\d,]+ GET/s and )?[\d,]+ PUT/s on the intermediate array's prefix "
        r"\(to-intermediate\) exceed the per-prefix request limit; s3's limit is 5,500 GET/s "
        r"and 3,500 PUT/s per partitioned prefix: S3 answers 503 Slow Down until it has "
        r"repartitioned the prefix, which takes minutes, and the run slows down or fails once "
        r"retries run out; to stay within it, plan for at most (\d+) workers \(--workers \1\) "
        r"or give a larger --max-mem \(larger intermediate chunks\)\.$",
        warning,
    ), warning
    fewer = re.search(r"--workers (\d+)", warning)
    assert fewer and 64 <= int(fewer.group(1)) < 256
    assert "within 5,500" not in out
    # As many workers as it suggests stay within the limit.
    code, out, _ = dry_run(era5, "--workers", fewer.group(1))
    assert code == 0, out
    assert "warning" not in out and "within 5,500 GET/s" in out


@pytest.mark.slow
def test_dask_local_dry_run_plans_for_its_workers_without_starting_them(
    era5: tuple[S3Server, str, list[str]], no_cluster: None
) -> None:
    code, out, _ = dry_run(era5, "--dask", "local:64")
    assert code == 0, out
    assert "a local Dask cluster (64 workers x 1 thread; planned, not started)" in out
    assert "estimate for 64 workers x 1 thread on s3" in out
    code, again, _ = dry_run(era5, "--workers", "64")
    # The same plan and estimate as --workers 64 (only the executor's name differs).
    strip = [line for line in out.splitlines() if "executor:" not in line]
    assert strip == [line for line in again.splitlines() if "executor:" not in line]


# -- --workers misuse, on a small local source ------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "maps.zarr"
    data = np.arange(16 * 32 * 32, dtype="float32").reshape(16, 32, 32)
    zarr.create_array(path, data=data, chunks=(1, 32, 32))
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--workers", "0", "--dry-run"],
            "--workers 0 must be a whole number of Dask workers, at least 1.",
        ),
        (
            ["--workers", "4"],
            "--workers 4 plans for Dask workers and needs --dry-run (to see the plan) or "
            "--dask (e.g. --dask local:4, to run on them).",
        ),
        (
            ["--workers", "4", "--dask", "local:2", "--dry-run"],
            "--workers 4 contradicts --dask local:2, which means 2 workers; drop one of them.",
        ),
        (
            ["--workers", "4", "--dask", "tcp://127.0.0.1:1"],
            "--workers 4 only plans a --dry-run; a run on --dask tcp://127.0.0.1:1 uses the "
            "workers its scheduler has, so drop --workers.",
        ),
        (
            ["--dask", "local:0", "--dry-run"],
            "--dask 'local:0' must name a positive number of workers, like local:2.",
        ),
    ],
)
def test_workers_misuse_is_one_sentence_and_writes_nothing(
    small: Path, tmp_path: Path, no_cluster: None, extra: list[str], message: str
) -> None:
    target = tmp_path / "series.zarr"
    result = CliRunner().invoke(
        cli, ["rechunk", str(small), str(target), "--chunks", "16,8,8", *extra]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {message}"
    assert not target.exists()


def test_local_dry_run_prices_nothing_and_storage_prices_the_target(
    small: Path, tmp_path: Path, no_cluster: None
) -> None:
    target = tmp_path / "series.zarr"
    args = ["rechunk", str(small), str(target), "--chunks", "16,8,8", "--dry-run"]
    result = CliRunner().invoke(cli, [*args, "--threads", "2"])
    assert result.exit_code == 0, result.output
    # 16 source chunks + 16 read back; 16 objects + 1 marker; a local disk bills nothing.
    assert (
        "estimate for 1 worker x 2 threads on local-ssd: 1 tasks, 32 GET and 17 PUT requests; "
        in result.output
    )
    assert "peak request rates" not in result.output and "$" not in result.output
    result = CliRunner().invoke(cli, [*args, "--storage", "s3", "--verify", "none"])
    assert result.exit_code == 0, result.output
    assert "on local-ssd -> s3: 1 tasks, 16 GET and 17 PUT requests ($" in result.output
    assert "within 5,500 GET/s and 3,500 PUT/s per partitioned prefix" in result.output
    assert not target.exists()


def test_api_keeps_its_signature_and_plans_for_workers(small: Path, no_cluster: None) -> None:
    plan = api.rechunk(small, "memory://", chunks=(16, 8, 8), dry_run=True, workers=3)
    estimate = plan.jobs[0].estimate  # type: ignore[union-attr]
    assert estimate is not None and estimate.workers == 3 and estimate.threads == 1
    plain = api.rechunk(small, "memory://", chunks=(16, 8, 8), dry_run=True)
    assert plain.jobs[0].estimate.workers == 1  # type: ignore[union-attr]
    with pytest.raises(SpecError, match=r"^--workers True must be a whole number"):
        api.rechunk(small, "memory://", chunks=(16, 8, 8), dry_run=True, workers=True)
