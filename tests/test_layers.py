"""The planning model stays pure (no I/O libraries), and imports flow one way through the
whole package: cli -> api -> report -> {measure, rechunking, inspection, tracing} -> spec
-> io -> plan -> cost -> model, with errors, units and _version as leaves."""

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


#: Each room's rank: a module may import its own room and rooms of lower rank only.
#: The four verbs share a rank and so never import one another; ``spec`` (user text ->
#: model values) sits above ``io`` (it names the installed reader and finds cached
#: calibrations) and below the verbs, which parse what they are given.
RANKS = {
    "errors": 0, "_version": 0,
    "units": 1,
    "model": 2,
    "cost": 3, "testing": 3,
    "plan": 4,
    "io": 5,
    "spec": 6,
    "measure": 7, "rechunking": 7, "inspection": 7, "tracing": 7,
    "report": 8,
    "api": 9,
    "cli": 10, "demo": 10, "__init__": 10,
    "__main__": 11,
}  # fmt: skip


def room_of(path: Path) -> str:
    """``io`` for ``io/sources/data.py``, ``spec`` for ``spec.py``."""
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def rooms_imported(path: Path) -> dict[str, str]:
    """The chunkwise rooms a module imports (anywhere in it, functions included), each
    with one import that names it; ``from chunkwise import x`` counts as the top package
    unless ``x`` is a room."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "chunkwise":
                names = [
                    f"chunkwise.{a.name}" if a.name in RANKS else "chunkwise.__init__"
                    for a in node.names
                ]
            else:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "chunkwise":
                out.setdefault(parts[1] if len(parts) > 1 else "__init__", name)
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_room_has_a_rank() -> None:
    rooms = {room_of(path) for path in MODULES}
    assert rooms <= set(RANKS), f"give {sorted(rooms - set(RANKS))} a rank in RANKS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_down(path: Path) -> None:
    room = room_of(path)
    upward = {
        other: name
        for other, name in rooms_imported(path).items()
        if other != room and RANKS.get(other, 99) >= RANKS[room]
    }
    assert not upward, f"{path.relative_to(PACKAGE)} ({room}) imports {upward}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The AST walk finds imports inside functions and ``from chunkwise import api``."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from chunkwise import api\n    import chunkwise.report.json\n")
    assert set(rooms_imported(module)) == {"api", "report"}


def test_nothing_below_the_facade_imports_it_cli_or_report() -> None:
    for path in MODULES:
        room = room_of(path)
        if RANKS[room] < RANKS["report"]:
            banned = set(rooms_imported(path)) & {"api", "cli", "report", "__init__"}
            assert not banned, f"{path.relative_to(PACKAGE)} imports {banned}"
