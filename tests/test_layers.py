"""The planning model stays pure: no I/O libraries, and imports flow one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "chunkwise"
PURE = ["model", "cost", "plan"]
IO_LIBRARIES = {"zarr", "numcodecs", "fsspec", "s3fs", "obstore", "dask", "distributed", "xarray", "h5py",
                "tifffile", "mrcfile", "matplotlib", "rich", "click", "yaml", "requests"}  # fmt: skip
# What each layer may import from chunkwise itself (see STYLE.md: cli -> api -> ... -> plan -> cost -> model).
ALLOWED = {
    "model": {"model", "errors", "units"},
    "cost": {"cost", "model", "errors", "units"},
    "plan": {"plan", "cost", "model", "errors", "units"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_io_library(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        roots = {name.split(".")[0] for name in imports_of(path)}
        assert not roots & IO_LIBRARIES, f"{path.name} imports {roots & IO_LIBRARIES}"


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_only_lower_layers(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        own = {name.split(".")[1] for name in imports_of(path) if name.startswith("chunkwise.")}
        assert own <= ALLOWED[layer], (
            f"{layer}/{path.name} imports chunkwise.{own - ALLOWED[layer]}"
        )


def test_units_and_errors_are_leaves() -> None:
    for name in ("units.py", "errors.py"):
        own = {n for n in imports_of(PACKAGE / name) if n.startswith("chunkwise.")}
        assert own <= {"chunkwise.errors"}
