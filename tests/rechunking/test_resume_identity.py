"""A run resumes only from the source it started from: the same relative path typed in
another folder names another source, and its target is not "resumed" from the first."""

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
