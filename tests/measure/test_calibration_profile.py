"""``chunkwise calibrate``: the installed reader's constants measured here, cached, and
taken by advise, bench and inspect with ``--profile``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
import zarr
from click.testing import CliRunner
from zarr.storage import LocalStore

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.io.installed import installed_reader
from chunkwise.model.codec import parse_codec
from chunkwise.units import parse_duration, parse_rate

VOLUME = {"shape": [128, 128, 128], "dtype": "float32", "dims": ["z", "y", "x"]}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "chunkwise"


@pytest.fixture
def profile(tmp_path: Path, cache: Path) -> Path:
    out = tmp_path / "profile.yaml"
    result = CliRunner().invoke(
        cli, ["calibrate", "--codec", "zstd:3", "--sample", "2MiB", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_calibrate_measures_the_installed_reader_and_keeps_it(profile: Path, cache: Path) -> None:
    doc = yaml.safe_load(profile.read_text())
    reader = installed_reader()
    assert doc["reader"]["preset"] == reader and doc["reader"]["threads"] == 1
    assert 0 < parse_duration(doc["reader"]["per_chunk_cpu"]) < 0.1
    (codec,) = doc["codec_profiles"]
    assert codec == "zstd:3"
    assert doc["codec_profiles"][codec]["ratio"] > 1
    assert parse_rate(doc["codec_profiles"][codec]["decode"]) > 0
    assert doc["calibration"]["zarr"] == zarr.__version__
    # The same profile is cached for --profile cached.
    assert yaml.safe_load((cache / f"calibration-{reader}.yaml").read_text()) == doc


def test_advise_prices_the_profile(profile: Path) -> None:
    doc = yaml.safe_load(profile.read_text())
    spec = {"array": VOLUME, "workload": "roi", "storage": "s3", "codec": "zstd:3"}
    for given in (str(profile), "cached"):
        advice = chunkwise.advise(spec, profile=given)
        assert advice.storage.reader.name == doc["reader"]["preset"]
        assert advice.storage.reader.per_chunk_cpu_s == pytest.approx(
            parse_duration(doc["reader"]["per_chunk_cpu"])
        )
        assert advice.best.codec_profile.decode_Bps == pytest.approx(
            parse_rate(doc["codec_profiles"]["zstd:3"]["decode"])
        )
    # A reader named in the spec wins over the profile's.
    assert chunkwise.advise(spec, profile=profile, reader="tensorstore").storage.reader.name == (
        "tensorstore"
    )
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "128,128,128", "--dtype", "float32", "--workload", "roi",
         "--codec", "zstd:3", "--profile", str(profile), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    reader = json.loads(result.output)["storage"]["reader"]
    assert reader["per_chunk_cpu_s"] == pytest.approx(
        parse_duration(doc["reader"]["per_chunk_cpu"])
    )


def test_inspect_and_bench_take_the_profile(profile: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(profile.read_text())
    cpu = parse_duration(doc["reader"]["per_chunk_cpu"])
    store = tmp_path / "cube.zarr"
    arr = zarr.create_array(
        LocalStore(store), shape=(64, 64, 64), chunks=(8, 8, 8), dtype="float32"
    )
    arr[:] = np.ones((64, 64, 64), dtype="float32")
    report = chunkwise.inspect(store, profile=profile, workload="roi")
    assert report.storage.reader.per_chunk_cpu_s == pytest.approx(cpu)
    result = CliRunner().invoke(cli, ["inspect", str(store), "--profile", str(profile), "--json"])
    assert result.exit_code == 0, result.output
    # bench prices the profile's reader (and measures its own CPU costs on the data).
    bench = chunkwise.bench(
        {"array": {"shape": [32, 64, 64], "dtype": "float32"}, "workload": "roi",
         "codec": "zstd:3", "candidates": [{"chunks": [16, 32, 32]}]},
        data="synthetic:smooth", only_candidates=True, repeats=1, warm=False,
        profile={"reader": {"preset": "tensorstore"}},
    )  # fmt: skip
    assert bench.storage.reader.name == "tensorstore"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.yaml", "profile file 'missing.yaml' does not exist; write one with chunkwise calibrate --out FILE."),
        ("cached", "no calibration of {reader} is cached here"),
        ("bad.yaml", "profile has unknown key(s) 'storage'; a profile holds calibration, codec_profiles, reader."),
    ],
)  # fmt: skip
def test_a_bad_profile_is_one_sentence(
    given: str, message: str, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("storage: s3\n")
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "64,64", "--dtype", "uint8", "--workload", "roi", "--profile", given],
    )  # fmt: skip
    assert result.exit_code == 2
    assert message.format(reader=installed_reader()) in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_profile_codecs_are_the_calibrated_ones(profile: Path) -> None:
    doc = yaml.safe_load(profile.read_text())
    advice = chunkwise.advise(
        {"array": VOLUME, "workload": "roi", "codec": "zstd:3"}, profile=profile
    )
    assert advice.best.layout.codec == parse_codec("zstd:3")
    assert advice.best.codec_profile.ratio == pytest.approx(
        doc["codec_profiles"]["zstd:3"]["ratio"]
    )


@pytest.mark.parametrize("reader", ["tensorstore", "zarrs"])
def test_calibrate_measures_the_reader_named_through_that_library(
    reader: str, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(reader)  # both are in the dev extra that make test installs
    from chunkwise.measure import calibrate

    families: list[tuple[str, int]] = []
    real = calibrate.in_fresh_process

    def spy(func: Any, *args: Any) -> Any:
        *_, layouts, _repeats, family = args
        families.append((family, len(set(layouts))))
        return real(func, *args)

    monkeypatch.setattr(calibrate, "in_fresh_process", spy)
    out = tmp_path / f"{reader}.yaml"
    result = CliRunner().invoke(
        cli,
        ["calibrate", "--reader", reader, "--codec", "zstd:3", "--sample", "2MiB", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Both layouts (small and large chunks) were timed in a fresh process, reading
    # through the library named.
    assert families == [(reader, 2)]
    doc = yaml.safe_load(out.read_text())
    assert doc["reader"]["preset"] == reader
    assert doc["calibration"]["library"].startswith(f"{reader} ")
    assert 0 < parse_duration(doc["reader"]["per_chunk_cpu"]) < 0.1
    assert 0 <= parse_duration(doc["reader"]["per_call"]) < 0.1
    cached = cache / f"calibration-{reader}.yaml"
    assert yaml.safe_load(cached.read_text()) == doc
    # "cached" picks the calibration of the reader the spec names, not the installed one.
    advice = chunkwise.advise(
        {"array": VOLUME, "workload": "roi", "codec": "zstd:3", "reader": reader},
        profile="cached",
    )
    assert advice.storage.reader.name == reader
    assert advice.storage.reader.per_chunk_cpu_s == pytest.approx(
        parse_duration(doc["reader"]["per_chunk_cpu"])
    )
    assert advice.storage.reader.per_call_s == pytest.approx(
        parse_duration(doc["reader"]["per_call"])
    )


def test_cached_names_the_spec_reader_when_it_has_none(cache: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "64,64", "--dtype", "uint8", "--workload", "roi",
         "--reader", "tensorstore", "--profile", "cached"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert (
        "no calibration of tensorstore is cached here" in result.output
        and "run chunkwise calibrate --reader tensorstore first" in result.output
    ), result.output


def test_calibrate_refuses_an_unknown_reader(cache: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--reader", "netcdf", "--sample", "1MiB"])
    assert result.exit_code == 2
    assert "reader 'netcdf' is unknown; use one of" in result.output
    assert "Traceback" not in result.output
