"""A dataset: several variables over shared, named dimensions (xarray's and CF's model).

Data variables are what a workload reads; coordinates (a dimension's own variable, the
variables a data variable lists in its ``coordinates`` attribute, cell ``bounds``, grid
mappings and other 0-d metadata variables) are read whole by xarray when it opens a
dataset. :func:`coordinate_names` tells them apart from names and attributes alone, the way
CF and xarray do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from chunkwise.errors import SpecError, shown
from chunkwise.model.array import ArraySpec
from chunkwise.model.workload import op_variables

__all__ = [
    "VARIABLE_ITEM_BYTES",
    "DatasetSpec",
    "VariableSpec",
    "coordinate_names",
    "model_dtype",
    "workload_for",
]

#: Bytes per element assumed for variable-length strings (in sizes and budgets).
VARIABLE_ITEM_BYTES = 64

#: Attributes whose value names other variables that are coordinates or metadata of the
#: variable carrying them (CF conventions 1.11, sections 5, 7.1 and 5.6).
_REFERENCING_ATTRS = ("coordinates", "bounds", "grid_mapping", "climatology", "ancillary_variables")

Role = Literal["data", "coordinate"]


def model_dtype(dtype: np.dtype[Any]) -> str:
    """A numeric stand-in of the same size for the layout model, which plans numbers:
    datetimes are 8-byte integers, strings and records their bytes."""
    if dtype.kind in "biufc":
        return dtype.name
    size = dtype.itemsize if dtype.kind != "T" else VARIABLE_ITEM_BYTES
    return {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64", 16: "complex128"}.get(size, "uint8")


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One variable of a dataset.

    Attributes
    ----------
    name
        The variable's name (a path ``group/name`` inside a group tree).
    shape
        Elements per dimension; ``()`` for a scalar.
    dtype
        The NumPy dtype string (``"float32"``, ``"<U8"``, ``"StringDType()"``, ...).
    dims
        One name per dimension.
    role
        ``"data"`` or ``"coordinate"``.
    itemsize
        Bytes per element (:data:`VARIABLE_ITEM_BYTES` for variable-length strings).
    numeric
        Whether the layout model can plan it: numbers, booleans and dates.
    model
        The numeric dtype the layout model plans it as (:func:`model_dtype`).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]
    role: Role
    itemsize: int
    numeric: bool
    model: str

    @classmethod
    def create(
        cls, name: str, shape: Sequence[int], dtype: Any, dims: Sequence[str], role: Role
    ) -> VariableSpec:
        """Validate one variable.

        Raises
        ------
        SpecError
            For dims that do not name every dimension once.
        """
        np_dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        dims = tuple(str(d) for d in dims)
        if len(dims) != len(shape) or len(set(dims)) != len(dims):
            raise SpecError(
                f"variable {name!r} has shape {list(shape)} but dims {list(dims)}; give one "
                "unique name per dimension."
            )
        itemsize = VARIABLE_ITEM_BYTES if np_dtype.kind == "T" else np_dtype.itemsize
        numeric = np_dtype.kind in "biufcmM" and np_dtype.fields is None
        return cls(name, shape, str(np_dtype), dims, role, itemsize, numeric, model_dtype(np_dtype))

    @property
    def nbytes(self) -> int:
        """Uncompressed size, bytes."""
        return math.prod(self.shape) * self.itemsize

    @property
    def plannable(self) -> bool:
        """The layout model can plan it: numbers or dates, at least one dim and element."""
        return self.numeric and len(self.shape) > 0 and 0 not in self.shape

    def array_spec(self) -> ArraySpec:
        """The variable as the layout model sees it (see :func:`model_dtype`).

        Raises
        ------
        SpecError
            For a variable that is not :attr:`plannable`.
        """
        return ArraySpec.create(self.shape, self.model, self.dims)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Variables over shared dimensions: a dimension has one size in every variable."""

    variables: tuple[VariableSpec, ...]

    @classmethod
    def create(
        cls, variables: Iterable[VariableSpec], *, unshared: Iterable[str] = ()
    ) -> DatasetSpec:
        """Validate that shared dimensions agree (except for the variables ``unshared``
        names, whose dims are their own: arrays without dimension names).

        Raises
        ------
        SpecError
            For a dimension with different sizes in two variables, or two variables of
            one name.
        """
        items = tuple(variables)
        own = set(unshared)
        sizes: dict[str, tuple[int, str]] = {}
        names: set[str] = set()
        for variable in items:
            if variable.name in names:
                raise SpecError(f"variable {variable.name!r} is given twice; name each once.")
            names.add(variable.name)
            if variable.name in own:
                continue
            scope = variable.name.rpartition("/")[0]  # dims are shared within a group
            for dim, size in zip(variable.dims, variable.shape, strict=True):
                seen = sizes.setdefault(f"{scope}/{dim}", (size, variable.name))
                if seen[0] != size:
                    raise SpecError(
                        f"dimension {dim!r} has {size} elements in {variable.name!r} but "
                        f"{seen[0]} in {seen[1]!r}; a dimension shared by variables must have "
                        "one size."
                    )
        return cls(items)

    def __getitem__(self, name: str) -> VariableSpec:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)


def coordinate_names(
    variables: Mapping[str, tuple[Sequence[str], Mapping[str, Any]]],
    declared: Iterable[str] = (),
) -> set[str]:
    """The coordinates among ``variables`` (name -> (dims, attributes)) of one group.

    A variable is a coordinate when it is its dimension's own variable (named like its only
    dim), is named by another variable's ``coordinates``, ``bounds``, ``grid_mapping``,
    ``climatology`` or ``ancillary_variables`` attribute (CF), is listed in ``declared``
    (xarray's own coordinates, a group's ``coordinates`` attribute), or is 0-d and named
    by no workload (scalar metadata).
    """
    names = set(variables)
    found = {name for name in declared if name in names}
    for name, (dims, attributes) in variables.items():
        if tuple(dims) == (name,):
            found.add(name)
        for key in _REFERENCING_ATTRS:
            value = attributes.get(key)
            if isinstance(value, str):
                # grid_mapping may read "crs: lat lon": the variable names end with ':'
                words = [w.rstrip(":") for w in value.split()]
                found.update(w for w in words if w in names and w != name)
        if not dims:
            found.add(name)
    return found


def workload_for(
    workload: str | Sequence[Mapping[str, Any]], name: str, known: Iterable[str]
) -> str | list[Mapping[str, Any]]:
    """The part of a workload that reads variable ``name``: a preset as it is, the ops of
    a list that name ``name`` or name no variable (``[]`` when none does).

    Raises
    ------
    SpecError
        For an op naming a variable that is not in ``known``.
    """
    if isinstance(workload, str):
        return workload
    names = set(known)
    out: list[Mapping[str, Any]] = []
    for entry in workload:
        wanted = op_variables(entry) if isinstance(entry, Mapping) else ()
        unknown = [v for v in wanted if v not in names]
        if unknown:
            raise SpecError(
                f"{entry.get('op')} op names variable(s) {', '.join(map(repr, unknown))}, which "
                f"the dataset does not have; it has {shown(sorted(names))}."
            )
        if not wanted or name in wanted:
            out.append({k: v for k, v in entry.items() if k != "variables"})
    return out
