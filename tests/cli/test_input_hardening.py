"""Bad input to ``advise`` and ``bench``: one sentence and exit status 2, never a traceback;
absurd input: bounded work.

Each case names the value, the problem and the fix in one line. The search is run on
shapes up to 2**63 - 1 bytes in a subprocess capped at 2 GiB of address space, and a
Hypothesis fuzzer mutates a valid spec with random JSON-like values: ``advise`` either
answers or raises :class:`~chunkwise.errors.ChunkwiseError`.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.cost import geometry
from chunkwise.errors import ChunkwiseError, SpecError, shown
from chunkwise.plan import candidates
from chunkwise.spec import MAX_SPEC_BYTES, load_spec

SMALL = "array: {shape: [8, 16, 16], dtype: float32, dims: [z, y, x]}\nworkload: roi\n"


def one_sentence(*args: str) -> str:
    """Run the CLI in-process; assert exit 2 and one ``Error: ...`` line; return it."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, (result.output, result.exception)
    output = result.output
    assert output.startswith("Error: "), output
    assert output.count("\n") == 1 and output.endswith("\n"), output
    assert "Traceback" not in output
    return output


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- 1, 2, 3: the spec file itself ------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "array: {shape: [4], dtype: float32}\nname: café\n".encode("latin-1"),
        bytes(range(256)) * 4,
    ],
    ids=["latin-1", "binary"],
)
def test_spec_that_is_not_utf8(tmp_path: Path, content: bytes) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    output = one_sentence("advise", str(spec))
    assert f"spec file '{spec}' is not UTF-8 text (byte " in output
    assert "save it as UTF-8 YAML." in output


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("lists.yaml", "array: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        ("maps.yaml", "array: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n"),
        ("lists.json", '{"array": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        ("maps.json", '{"array": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}"),
    ],
)
def test_spec_nested_too_deep(tmp_path: Path, name: str, text: str) -> None:
    output = one_sentence("advise", write(tmp_path / name, text))
    assert "nests lists or mappings too deeply to read" in output


@pytest.mark.parametrize("name", ["spec.yaml", "spec.json"])
def test_spec_with_a_4400_digit_integer(tmp_path: Path, name: str) -> None:
    digits = "9" * 4400
    text = (
        f'{{"array": {{"shape": [{digits}], "dtype": "float32"}}, "workload": "roi"}}'
        if name.endswith(".json")
        else f"workload: roi\narray: {{shape: [{digits}], dtype: float32}}\n"
    )
    output = one_sentence("advise", write(tmp_path / name, text))
    line = 1 if name.endswith(".json") else 2
    assert f"has a 4400-digit number at line {line}; no size or count is that large" in output


def test_spec_with_a_4000_digit_integer_reaches_the_array_check(tmp_path: Path) -> None:
    # Python parses it; the array check refuses it without printing 4000 digits.
    spec = write(tmp_path / "spec.yaml", f"array: {{shape: [{'9' * 4000}], dtype: float32}}\n")
    output = one_sentence("advise", spec, "--workload", "roi")
    assert (
        "array shape [1e+4000] of float32 holds 2**13289.7 bytes, more than the 2**63 - 1" in output
    )


def test_spec_path_that_is_a_directory(tmp_path: Path) -> None:
    output = one_sentence("advise", str(tmp_path))
    assert (
        f"spec path '{tmp_path}' is a directory; give the path of a YAML or JSON spec file."
        in output
    )
    output = one_sentence("bench", str(tmp_path), "--data", "synthetic:smooth")
    assert "is a directory" in output
    output = one_sentence("advise", "--codec-profiles", str(tmp_path), "--shape", "8,8",
                          "--dtype", "uint8", "--workload", "roi")  # fmt: skip
    assert "is a directory" in output


def test_spec_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL)
    spec.chmod(0)
    if os.access(spec, os.R_OK):  # root reads anything: make the read fail as it would

        def denied(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", denied)
    try:
        output = one_sentence("advise", str(spec))
    finally:
        spec.chmod(0o644)
    assert (
        f"spec file '{spec}' cannot be read (Permission denied); check its permissions." in output
    )


def test_spec_file_too_big_is_not_parsed(tmp_path: Path) -> None:
    spec = tmp_path / "data.json"
    with spec.open("wb") as handle:
        handle.truncate(16 * MAX_SPEC_BYTES)  # sparse: nothing is written
    output = one_sentence("advise", str(spec))
    assert "is 64 MiB, too big for a spec (at most 4 MiB); check the path" in output


def test_yaml_value_python_cannot_build(tmp_path: Path) -> None:
    output = one_sentence("advise", write(tmp_path / "s.yaml", SMALL + "name: 2024-13-45\n"))
    assert "has a value YAML cannot turn into data (month must be in 1..12); fix it." in output


# -- 4, 6: the array --------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [33, 40])
def test_more_than_32_dims(ndim: int) -> None:
    output = one_sentence("advise", "--shape", ",".join(["2"] * ndim), "--dtype", "uint8",
                          "--workload", "roi")  # fmt: skip
    assert (
        f"array shape has {ndim} dims; chunkwise handles at most 32 (zarr and NumPy arrays of "
        "more dims are rare): drop or merge dims."
    ) in output


def test_32_dims_are_fine() -> None:
    advice = chunkwise.advise(array={"shape": [2] * 32, "dtype": "uint8"}, workload="roi", top=1)
    assert len(advice.best.layout.chunks) == 32


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        ("null", "array dtype is missing (null); give a NumPy data type name like 'float32'"),
        ("~", "array dtype is missing (null)"),
        ("float128", "dtype 'float128' (float128) has no zarr data type; use one of float16/32/64"),
        ("nonsense", "dtype 'nonsense' is not a NumPy data type; use a name like 'float32'"),
        ("[1, 2]", "dtype [1, 2] is not a NumPy data type"),
        ("'U8'", "dtype 'U8' is not a fixed-size numeric type"),
    ],
)
def test_bad_dtypes(tmp_path: Path, dtype: str, message: str) -> None:
    spec = write(tmp_path / "s.yaml", f"array: {{shape: [8, 8], dtype: {dtype}}}\nworkload: roi\n")
    assert message in one_sentence("advise", spec)


def test_dims_must_be_names(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "s.yaml", "array: {shape: [8, 8], dtype: uint8, dims: 5}\nworkload: roi\n"
    )
    assert "dims 5 must be a list of dimension names, like [z, y, x]." in one_sentence(
        "advise", spec
    )


# -- 5: storage values of the wrong kind ------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("{latency: null}", "storage latency None is not a duration; write it like '20ms'."),
        ("{latency: [20]}", "storage latency [20] is not a duration; write it like '20ms'."),
        ("{latency: {ms: 20}}", "storage latency {'ms': 20} is not a duration"),
        ("{latency: true}", "storage latency True is not a duration"),
        ("{latency: -1}", "storage latency -1 must be a finite, non-negative duration."),
        ("{latency: .nan}", "storage latency nan must be a finite, non-negative duration."),
        ("{latency: .inf}", "storage latency inf must be a finite, non-negative duration."),
        ("{bandwidth: null}", "storage bandwidth None is not a rate; write it like '200MB/s'."),
        ("{bandwidth: [1, 2]}", "storage bandwidth [1, 2] is not a rate"),
        ("{bandwidth: -5}", "storage bandwidth -5 must be a finite, non-negative size."),
        ("{bandwidth: .inf}", "storage bandwidth inf must be a finite, non-negative size."),
        ("{stream_bandwidth: false}", "storage stream_bandwidth False is not a rate"),
        ("{concurrency: null}", "storage concurrency None must be a positive integer."),
        ("{concurrency: [4]}", "storage concurrency [4] must be a positive integer."),
        ("{concurrency: true}", "storage concurrency True must be a positive integer."),
        ("{concurrency: -2}", "storage concurrency -2 must be a positive integer."),
        ("{concurrency: 2.5}", "storage concurrency 2.5 must be a positive integer."),
        ("{concurrency: 99999999999999999999}", "storage concurrency 99999999999999999999 is larger than 2**63 - 1"),
        ("{block_size: {a: 1}}", "storage block_size {'a': 1} is not a byte size; write it like '64MiB'."),
        (f"{{block_size: 1{'0' * 400}}}", "storage block_size 1e+400 must be a finite, non-negative size."),
        ("{get_price: .nan}", "storage get_price nan must be a non-negative number of US dollars."),
        ("{put_price: .inf}", "storage put_price inf must be a non-negative number of US dollars."),
        ("{storage_price: [1]}", "storage storage_price [1] must be a non-negative number of US dollars."),
        ("{name: [a]}", "storage name ['a'] must be text, like 'my-store'."),
        ("{preset: {preset: s3}}", "storage preset {'preset': 's3'} must be a preset name."),
        ("{1: a, fast: yes, latency: 1ms}", "storage setting(s) 1, 'fast' unknown; use "),
    ],
)  # fmt: skip
def test_storage_values_of_the_wrong_kind(tmp_path: Path, storage: str, message: str) -> None:
    spec = write(tmp_path / "s.yaml", SMALL + f"storage: {storage}\n")
    assert message in one_sentence("advise", spec)


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        ("{sequential_inner_reads: 'no'}", "reader sequential_inner_reads 'no' must be true or false."),
        ("{threads: 0}", "reader threads 0 must be a positive integer."),
        ("{concurrency: null}", "reader concurrency None must be a positive integer."),
        ("{per_chunk_cpu: [1]}", "reader per_chunk_cpu [1] is not a duration"),
        ("{preset: [tensorstore]}", "reader preset ['tensorstore'] must be a preset name."),
    ],
)  # fmt: skip
def test_reader_values_of_the_wrong_kind(tmp_path: Path, reader: str, message: str) -> None:
    spec = write(tmp_path / "s.yaml", SMALL + f"reader: {reader}\n")
    assert message in one_sentence("advise", spec)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workload": [{"op": "region", "weight": 10**400}]}, "region op weight 1e+400 must be a non-negative number."),
        ({"workload": [{"op": "scan", "weight": 1e308}, {"op": "write", "weight": 1e308}]}, "workload weights sum to inf"),
        ({"workload": [{"op": "point", "count": 2**63}]}, "point op count 9223372036854775808 is larger than 2**63 - 1"),
        ({"workload": [{"op": "append", "dim": "z", "size": 10**5000}]}, "append op size 1e+5000 is larger than 2**63 - 1"),
        ({"workload": [{"op": "scan", "name": ["a"]}]}, "scan op name ['a'] must be text"),
        ({"workload": [{"op": ["scan"]}]}, "workload op ['scan'] is unknown"),
        ({"workload": [{"op": "plane", "dims": [None]}]}, "plane op: dims [None] must be a dimension name or a list of names."),
        ({"workload": [{"op": "scan", 3: 1, "q": 2}]}, "scan op has unknown key(s) 3, 'q';"),
        ({"workload": {"preset": ["roi"]}}, "workload preset ['roi'] must be a preset name."),
        ({"constraints": {"max_objects": 2**64}}, "constraint max_objects 18446744073709551616 is larger than 2**63 - 1"),
        ({"constraints": {"zarr_format": 2.0}}, "constraint zarr_format 2.0 must be 2 or 3."),
        ({"constraints": {"align_with": {"z": 1}}, "array": {"shape": [2**40, 4], "dtype": "uint8", "dims": ["z", "y"]}},
         "align_with z=1 makes 1,099,511,627,776 Dask chunks along z; chunkwise aligns with at most 100,000 per dim"),
        ({"constraints": {"fixed_chunks": {"z": 10**5000}}}, "fixed chunk size z=1e+5000 is larger than the array"),
        ({"constraints": {"x": 1, 2: 3}}, "unknown constraint(s) 2, 'x'"),
        ({"codec_profiles": {"zstd:3": {"ratio": float("nan"), "encode": "1GB/s", "decode": "1GB/s"}}},
         "codec profile ratio nan for 'zstd:3' must be a positive number."),
        ({"codec_profiles": {"zstd:3": {"ratio": 2, "encode": "1GB/s", "decode": None}}},
         "decode throughput of zstd:3 None is not a rate"),
        ({"candidates": [{"chunks": [10**5000, 1, 1]}]}, "chunks [1e+5000, 1, 1] has size 1e+5000, more than 2**63 - 1"),
        ({"top": 10**5000}, "top 1e+5000 is larger than 2**63 - 1"),
    ],
)  # fmt: skip
def test_values_through_the_python_api(overrides: dict[str, Any], message: str) -> None:
    spec: dict[str, Any] = {
        "array": {"shape": [8, 16, 16], "dtype": "float32", "dims": ["z", "y", "x"]},
        "workload": "roi",
    }
    spec.update(overrides)
    with pytest.raises(ChunkwiseError) as caught:
        chunkwise.advise(spec)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# -- 8: counts on the command line (rechunk/convert --threads are the engine's) --------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "storage concurrency 0 must be a positive integer."),
        (["--concurrency", "-3"], "storage concurrency -3 must be a positive integer."),
        (["--top", "0"], "top 0 must be a positive integer."),
        (["--max-objects", "-1"], "constraint max_objects -1 must be a positive integer."),
        (["--latency", "-1ms"], "storage latency '-1ms' is not a number with a unit"),
    ],
)
def test_advise_counts(args: list[str], message: str) -> None:
    output = one_sentence(
        "advise", "--shape", "8,8", "--dtype", "uint8", "--workload", "roi", *args
    )
    assert message in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "0"], "top 0 must be a positive integer."),
        (["--top", "-2"], "top -2 must be a positive integer."),
        (["--repeats", "-1"], "repeats -1 must be at least 1."),
        (["--seed", "-1"], "seed -1 must be a non-negative integer, like 0."),
        (["--store", "emulated://?concurrency=0"], "emulated store concurrency '0' must be a positive integer."),
    ],
)  # fmt: skip
def test_bench_counts(tmp_path: Path, args: list[str], message: str) -> None:
    spec = write(tmp_path / "s.yaml", SMALL)
    output = one_sentence("bench", spec, "--data", "synthetic:smooth", "--quiet", *args)
    assert message in output


# -- 7: bench's spec and data disagree -------------------------------------------------


@pytest.fixture
def cube(tmp_path: Path) -> str:
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((8, 16, 16), "float32"))
    return str(path)


def test_bench_spec_shape_differs_from_the_data(tmp_path: Path, cube: str) -> None:
    spec = write(tmp_path / "s.yaml", SMALL.replace("[8, 16, 16]", "[4, 16, 16]"))
    output = one_sentence("bench", spec, "--data", cube, "--quiet")
    assert (
        f"the spec's array has shape 4x16x16 but the data from '{cube}' has shape 8x16x16; "
        "make the spec's shape match the data, or leave 'array' out of the spec"
    ) in output
    output = one_sentence("bench", spec, "--data", cube, "--region", "z=0:2", "--quiet")
    assert "has shape 8x16x16 (2x16x16 in region z=0:2);" in output
    output = one_sentence("codecs", spec, "--data", cube)
    assert "the spec's array has shape 4x16x16 but the data" in output


def test_bench_spec_shape_of_the_region_is_fine(tmp_path: Path, cube: str) -> None:
    spec = SMALL.replace("[8, 16, 16]", "[4, 16, 16]")
    spec += "candidates: [{zarr_format: 3, chunks: [4, 8, 8]}]\n"
    report = chunkwise.bench(
        load_spec(write(tmp_path / "s.yaml", spec)), data=cube, region="z=2:6",
        only_candidates=True, repeats=1, warm=False,
    )  # fmt: skip
    assert report.array.shape == (4, 16, 16)


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ("{op: point, count: 9000000000000}", "workload op point[9000000000000] needs 229 TiB in memory to benchmark"),
        ("{op: append, dim: z, size: 9000000000000}", "workload op append[z+9000000000000] needs 8.19 PiB in memory"),
    ],
)  # fmt: skip
def test_bench_refuses_ops_it_cannot_hold(tmp_path: Path, op: str, message: str) -> None:
    spec = write(tmp_path / "s.yaml", SMALL.replace("workload: roi", f"workload: [{op}]"))
    output = one_sentence("bench", spec, "--data", "synthetic:smooth", "--quiet")
    assert message in output
    assert "bench holds; give it a smaller count or size (advise prices the full one)." in output


# -- 9: bounded work for absurd shapes -------------------------------------------------

LIMIT_BYTES = 2 * 2**30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def _advise_capped(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chunkwise", "advise", *args, "--json"],
        capture_output=True, text=True, timeout=timeout, preexec_fn=_cap_memory, env=env,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "dtype", "workload"),
    [
        ("1099511627776,1048576,1048576", "float32", "roi"),  # 2**82 bytes
        ("9223372036854775808,630,630", "float32", "roi"),  # a dim of 2**63
        ("1099511627776,1024,512", "float32", "roi"),  # 2**61 bytes: representable
        ("1099511627776,1024,512", "float32", "slice-viewer"),
        ("9223372036854775807", "int8", "roi"),  # the largest 1-D array
        ("4294967295,2147483647", "int8", "full-volume"),
        ("4294967295,2147483647", "int8", "time-series"),
    ],
)
def test_absurd_shapes_finish_in_2_gib(shape: str, dtype: str, workload: str) -> None:
    result = _advise_capped("--shape", shape, "--dtype", dtype, "--workload", workload)
    if result.returncode == 2:
        assert result.stderr.startswith("Error: array shape [") and result.stderr.count("\n") == 1
        assert "more than the 2**63 - 1 that NumPy and zarr can address;" in result.stderr
        assert int(shape.split(",")[0]) >= 2**40  # only the unrepresentable ones
        return
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["array"]["shape"] == [int(n) for n in shape.split(",")]
    best = doc["recommendations"][0]
    assert all(
        1 <= c <= n for c, n in zip(best["layout"]["chunks"], doc["array"]["shape"], strict=True)
    )
    assert best["weighted_s"] > 0 and best["objects"] >= 1


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("1099511627776,1048576,1048576", "array shape [1099511627776, 1048576, 1048576] of float32 holds 2**82 bytes"),
        ("9223372036854775808,630,630", "array shape [9223372036854775808, 630, 630] of float32 holds 2**83.6 bytes"),
    ],
)  # fmt: skip
def test_unrepresentable_shapes_are_refused(shape: str, message: str) -> None:
    output = one_sentence("advise", "--shape", shape, "--dtype", "float32", "--workload", "roi")
    assert message in output
    assert "describe an array of fewer elements, such as a representative part of it." in output


def test_alignment_with_huge_dask_chunks_is_quick() -> None:
    # Listing the divisors of a 2**62 Dask chunk by trial division up to its square root
    # took minutes; the hang guard is the timeout.
    script = (
        "import chunkwise; a = chunkwise.advise(array={'shape': [2**63 - 1], 'dtype': 'int8'}, "
        "workload='roi', constraints={'align_with': {'dim_0': 2**62}}, top=1); "
        "print(a.best.layout.chunks[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        preexec_fn=_cap_memory, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert 2**62 % int(result.stdout) == 0


def test_divisors_stay_exact_for_ordinary_dask_chunks() -> None:
    assert candidates._divisors(720720) == [d for d in range(1, 720721) if 720720 % d == 0]
    many = 2**4 * 3**2 * 5 * 7 * 11 * 13 * 17 * 19  # 960 divisors: about one per octave kept
    kept = candidates._divisors(many)
    assert 1 in kept and many in kept and all(many % d == 0 for d in kept)
    assert len(kept) <= 2 * many.bit_length() + 2


# -- the geometry behind 9: periods summed piece by piece ------------------------------


def _enumerated(extent: int, chunk: int, shard: int, count: int, growing: bool) -> list[int]:
    starts = np.arange(count, dtype=np.int64)
    ends = starts + extent if growing else None
    return [int(v) for v in geometry._per_position(starts, extent, chunk, shard, ends).sum(axis=1)]


def test_segment_sums_equal_enumeration_exhaustively() -> None:
    for chunk, per_shard in itertools.product(range(1, 6), range(1, 5)):
        shard = chunk * per_shard
        for extent, count, growing in itertools.product(
            range(1, 2 * shard + 3), range(1, shard + 1), (False, True)
        ):
            expected = _enumerated(extent, chunk, shard, count, growing)
            actual = geometry._segment_sums(extent, chunk, shard, count, growing=growing)
            assert actual == expected, (extent, chunk, shard, count, growing)


@pytest.fixture
def enumerate_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    def clear() -> None:
        for cached in (geometry.dim_access, geometry.append_access, geometry._period_sums):
            cached.cache_clear()

    def switch() -> None:
        clear()
        monkeypatch.setattr(geometry, "_ENUMERATED_POSITIONS", 2**40)

    clear()
    yield switch
    clear()


@pytest.mark.parametrize(
    ("n", "extent", "chunk", "shard"),
    [(50_000, 700, 96, 96 * 64), (30_000, 1, 7000, 7000), (20_000, 9000, 10, 10_000), (12_289, 12_289, 4097, 8194)],
)  # fmt: skip
def test_long_periods_agree_with_enumeration(
    n: int, extent: int, chunk: int, shard: int, enumerate_everything: Callable[[], None]
) -> None:
    pieces = (
        geometry.dim_access(n, extent, chunk, shard),
        geometry.append_access(extent, chunk, shard),
    )
    enumerate_everything()
    assert pieces == (
        geometry.dim_access(n, extent, chunk, shard),
        geometry.append_access(extent, chunk, shard),
    )


def test_dim_access_on_the_largest_dims() -> None:
    n = 2**63 - 1
    access = geometry.dim_access(n, 64, 2**62, 2**63)  # a shard past int64
    assert access.chunks == pytest.approx(1.0) and access.shards == pytest.approx(1.0)
    whole = geometry.dim_access(n, n, 3, 3 * 2**61)
    assert whole.chunks == pytest.approx(n / 3) and whole.shards == 2.0
    grown = geometry.append_access(2**62, 2**40, 2**61)
    assert grown.chunks == pytest.approx(2**22 + 1)


# -- 10: more of the same kind ---------------------------------------------------------


def test_shown_is_bounded() -> None:
    assert shown([184, 630]) == "[184, 630]" and shown("f4") == "'f4'"
    assert shown(10**5000) == "1e+5000" and shown(-(10**4400 - 1)) == "-1e+4400"
    nested: list[Any] = []
    tip = nested
    for _ in range(100_000):
        tip.append([])
        tip = tip[0]
    assert shown(nested) == "[[[[...]]]]"
    assert len(shown(list(range(10**6)))) < 100


BASE: dict[str, Any] = {
    "array": {"shape": [64, 32, 16], "dtype": "float32", "dims": ["z", "y", "x"]},
    "workload": [
        {"op": "region", "extent": {"z": 8, "y": 8, "x": 8}, "weight": 0.5},
        {"op": "plane", "dims": ["y", "x"], "weight": 0.3},
        {"op": "point", "count": 10, "weight": 0.1},
        {"op": "append", "dim": "z", "size": 2, "weight": 0.1},
    ],
    "storage": {"latency": "20ms", "bandwidth": "200MB/s", "concurrency": 8, "get_price": 0.0004},
    "reader": {"preset": "zarr-python", "threads": 2},
    "constraints": {"max_objects": 100_000, "chunk_bytes": {"min": "1KiB", "max": "64MiB"},
                    "align_with": {"z": 16}},
    "codecs": ["zstd:3", "blosc:lz4:5:shuffle"],
    "codec_profiles": {"zstd:3": {"ratio": 1.5, "encode": "200MB/s", "decode": "800MB/s"}},
    "candidates": [{"zarr_format": 3, "chunks": [8, 8, 8], "shards": [32, 32, 16]}],
    "top": 2,
}  # fmt: skip
WORDS = [
    "float32", "uint8", "20ms", "200MB/s", "1MiB", "roi", "z", "y", "x", "plane", "region",
    "scan", "point", "append", "write", "series", "s3", "local-ssd", "zstd:3", "none",
    "tensorstore", "preset", "min", "max", "dims", "dim", "extent", "count", "size",
    "weight", "op", "shape", "dtype", "",
]  # fmt: skip
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-5, max_value=70), st.integers(),
    st.integers(min_value=2**60, max_value=10**1000), st.floats(), st.text(max_size=12),
    st.sampled_from(WORDS),
)  # fmt: skip
VALUES = st.recursive(
    LEAVES,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS) | st.integers(0, 3), kids, max_size=4)
    ),
    max_leaves=8,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


PATHS = list(_paths(BASE))


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """``BASE`` with one to six entries replaced by random JSON-like values, deleted, or
    joined by a random key."""
    spec = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(PATHS))
        node: Any = spec
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = draw(VALUES)
            elif action == "delete":
                del node[path[-1]]
            elif isinstance(node, dict):
                node[draw(st.sampled_from(WORDS))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):  # an earlier mutation moved this path
            pass
    return spec


def test_base_spec_is_valid() -> None:
    assert chunkwise.advise(BASE).best.layout.chunks


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_advise_answers_or_raises_a_chunkwise_error(spec: dict[str, Any]) -> None:
    try:
        advice = chunkwise.advise(spec)
    except ChunkwiseError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert advice.recommendations


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=200, deadline=None)
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        VALUES.map(lambda v: json.dumps({"array": v}, default=str).encode("utf-8")),
    ),
    name=st.sampled_from(["spec.yaml", "spec.json"]),
)
def test_load_spec_reads_or_raises_a_spec_error(fuzz_dir: Path, content: bytes, name: str) -> None:
    path = fuzz_dir / name
    path.write_bytes(content)
    try:
        assert isinstance(load_spec(path), dict)
    except SpecError as exc:
        assert "\n" not in str(exc)
