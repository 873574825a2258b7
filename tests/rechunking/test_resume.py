"""What a rerun resumes: only the run begun from the same source (the same relative path
typed in another folder names another source), and shards a kill cut short are written
again rather than failing every rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from chunkwise import api
from chunkwise.errors import SpecError
from chunkwise.rechunking.convert import ConversionResult, source_place
from chunkwise.rechunking.executor import RechunkEvent

OPTIONS = {"chunks": (200, 7, 5), "max_mem": "24MiB", "engine": "zarr", "threads": 1}


class _Stop(Exception):
    pass


def _stop_after_a_few_tasks(event: RechunkEvent) -> None:
    if event.kind == "task-done" and event.done >= 3:
        raise _Stop


def _source(folder: Path, seed: int) -> np.ndarray:
    folder.mkdir()
    values = np.random.default_rng(seed).standard_normal((200, 201, 103)).astype("float32")
    zarr.create_array(folder / "src.zarr", data=values, chunks=(1, 201, 103))
    return values


def test_the_same_relative_source_in_another_folder_is_another_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _source(tmp_path / "a", seed=1)
    theirs = _source(tmp_path / "b", seed=2)
    target = tmp_path / "dst.zarr"
    monkeypatch.chdir(tmp_path / "a")
    with pytest.raises(_Stop):
        api.rechunk("src.zarr", target, events=_stop_after_a_few_tasks, **OPTIONS)  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(SpecError, match="holds an unfinished chunkwise run with other options"):
        api.rechunk("src.zarr", target, **OPTIONS)  # type: ignore[arg-type]
    # Named as it was, the first source's run resumes; replaced, the target holds b's data.
    result = api.rechunk("src.zarr", target, overwrite=True, **OPTIONS)  # type: ignore[arg-type]
    assert isinstance(result, ConversionResult)
    assert np.array_equal(zarr.open_array(target, mode="r")[...], theirs)


def test_a_run_resumes_from_the_same_source_however_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _source(tmp_path / "a", seed=1)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    target = tmp_path / "dst.zarr"
    monkeypatch.chdir(tmp_path / "a")
    with pytest.raises(_Stop):
        api.rechunk("src.zarr", target, events=_stop_after_a_few_tasks, **OPTIONS)  # type: ignore[arg-type]
    result = api.rechunk(tmp_path / "link" / "src.zarr", target, **OPTIONS)  # type: ignore[arg-type]
    assert isinstance(result, ConversionResult) and result.resumed
    assert np.array_equal(zarr.open_array(target, mode="r")[...], values)


def test_source_place_resolves_local_paths_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.h5").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    real = str((tmp_path / "x.h5").resolve())
    assert source_place("x.h5") == real
    assert source_place("file://x.h5") == real
    assert source_place("x.h5#/group/var") == f"{real}#/group/var"
    for given in ("s3://bucket/a.zarr", "memory://a", "sample:air-temperature", "missing.zarr"):
        assert source_place(given) == given


def test_a_shard_cut_short_by_a_kill_is_rewritten_on_resume(tmp_path: Path) -> None:
    """zarrs and zarr-python write files in place, so a kill can leave a shard cut short.
    zarr-python 3.1 reads a shard before rewriting it and failed on such a one, on every
    rerun; the task that owns it now removes its objects and writes them again."""
    values = np.random.default_rng(5).standard_normal((64, 128, 128)).astype("float32")
    zarr.create_array(tmp_path / "src.zarr", data=values, chunks=(1, 128, 128))
    target = tmp_path / "dst.zarr"
    options = {
        "chunks": (64, 16, 16), "shards": (64, 32, 32), "max_mem": "24MiB", "threads": 1,
        "engine": "zarr",
    }  # fmt: skip

    def stop_before_the_target(event: RechunkEvent) -> None:
        if event.kind == "stage-start" and event.stage == "from-intermediate":
            raise _Stop

    with pytest.raises(_Stop):
        api.rechunk(tmp_path / "src.zarr", target, events=stop_before_the_target, **options)  # type: ignore[arg-type]
    # What a kill in the middle of writing a shard leaves: the first half of one.
    zarr.create_array(
        tmp_path / "whole.zarr", data=values, chunks=(64, 16, 16), shards=(64, 32, 32)
    )
    whole = (tmp_path / "whole.zarr" / "c" / "0" / "3" / "3").read_bytes()
    torn = target / "c" / "0" / "3" / "3"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(whole[: len(whole) // 2])
    result = api.rechunk(tmp_path / "src.zarr", target, **options)  # type: ignore[arg-type]
    assert isinstance(result, ConversionResult) and result.resumed
    assert np.array_equal(zarr.open_array(target, mode="r")[...], values)
