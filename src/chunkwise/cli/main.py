"""``chunkwise`` command line. Each command parses, calls :mod:`chunkwise.api`, renders.

User mistakes (:class:`~chunkwise.errors.ChunkwiseError`) print one sentence to
stderr and exit with status 2; there is no traceback for them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from chunkwise import api
from chunkwise._version import __version__
from chunkwise.cli.common import (
    UserError,
    codec_profiles_arg,
    int_list,
    profile_option,
    storage_arg,
    user_errors,
)
from chunkwise.cli.inspect import inspect
from chunkwise.cli.measure import bench, calibrate, codecs, probe
from chunkwise.cli.rechunk import convert, rechunk
from chunkwise.cli.trace import trace
from chunkwise.model.dataset import DatasetSpec
from chunkwise.model.storage import READER_PRESETS, STORAGE_PRESETS
from chunkwise.model.workload import WORKLOAD_PRESETS
from chunkwise.report.json import advice_document
from chunkwise.report.terminal import print_advice
from chunkwise.spec import load_spec

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chunkwise")
def cli() -> None:
    """Which chunks, shards and codecs should this Zarr array use?"""


@cli.command()
@click.argument("spec", required=False)
@click.option(
    "--data",
    "data_path",
    help="Take shape, dtype and dims from existing data: anything convert reads (Zarr, "
    "NetCDF, HDF5, TIFF, MRC, .npy); a dataset gets a layout per variable.",
)
@click.option("--shape", help="Array shape, e.g. 184,630,630 (instead of a spec file).")
@click.option("--dtype", help="NumPy dtype, e.g. float32.")
@click.option("--dims", help="Dimension names, e.g. z,y,x.")
@click.option("--workload", "workload", help=f"Workload preset: {', '.join(WORKLOAD_PRESETS)}.")
@click.option(
    "--storage",
    help=f"Storage preset ({', '.join(STORAGE_PRESETS)}) or a file written by chunkwise probe.",
)
@click.option(
    "--codec-profiles",
    help="Measured codec profiles, a file written by chunkwise codecs.",
)
@click.option(
    "--reader",
    help=f"Reader to price: {', '.join(READER_PRESETS)}; default: the one installed here.",
)
@profile_option
@click.option("--latency", help="Override the storage latency, e.g. 20ms.")
@click.option("--bandwidth", help="Override the storage bandwidth, e.g. 200MB/s.")
@click.option("--concurrency", type=int, help="Override the storage concurrency.")
@click.option(
    "--zarr-format", type=click.Choice(["2", "3"]), help="Require zarr format 2 (no shards) or 3."
)
@click.option("--max-objects", type=int, help="Most data objects (files/keys) allowed.")
@click.option(
    "--codec",
    help="Fix the codec, e.g. blosc:zstd:5:shuffle, zstd:3, gzip:6, none; add +crc32c for a checksum per chunk.",
)
@click.option(
    "--checksum",
    is_flag=True,
    help="Protect every chunk with a crc32c checksum, checked on read (zarr format 3).",
)
@click.option("--top", type=int, help="Number of recommendations (default 5).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON document.")
@click.option("--no-snippets", is_flag=True, help="Do not print the zarr/xarray code snippets.")
@user_errors
def advise(
    spec: str | None,
    data_path: str | None,
    shape: str | None,
    dtype: str | None,
    dims: str | None,
    workload: str | None,
    storage: str | None,
    codec_profiles: str | None,
    reader: str | None,
    profile: str | None,
    latency: str | None,
    bandwidth: str | None,
    concurrency: int | None,
    zarr_format: str | None,
    max_objects: int | None,
    codec: str | None,
    checksum: bool,
    top: int | None,
    as_json: bool,
    no_snippets: bool,
) -> None:
    """Recommend layouts for the array, workload and storage in SPEC (YAML/JSON) or flags."""
    data: dict[str, Any] = {} if spec is None else load_spec(spec)
    dataset, variable = None, "data"
    if data_path is not None:
        if shape is not None or dtype is not None or "array" in data:
            raise UserError(
                "--data gives the shape and dtype; drop --shape, --dtype and the spec's array."
            )
        dataset, variable = _data_variables(data_path, dims)
        if len(dataset.variables) == 1:
            only = dataset.variables[0]
            data["array"] = {
                "shape": list(only.shape),
                "dtype": only.model,
                "dims": list(only.dims),
            }
            dataset = None
        else:
            data["array"] = None  # per variable, below
    elif shape is not None or dtype is not None or dims is not None:
        current = dict(data.get("array") or {})
        if shape is not None:
            current["shape"] = int_list(shape, "--shape")
        if dtype is not None:
            current["dtype"] = dtype
        if dims is not None:
            current["dims"] = [d.strip() for d in dims.split(",")]
        data["array"] = current
    if "array" not in data:
        raise UserError(
            "give a spec file or --shape and --dtype, e.g. chunkwise advise --shape 184,630,630 --dtype float32 --workload slice-viewer."
        )
    if workload is not None:
        data["workload"] = workload
    data.setdefault("workload", None)
    if data["workload"] is None:
        raise UserError(
            f"give a workload: --workload with one of {', '.join(WORKLOAD_PRESETS)}, or 'workload:' in the spec file."
        )
    overrides = {
        k: v
        for k, v in (("latency", latency), ("bandwidth", bandwidth), ("concurrency", concurrency))
        if v is not None
    }
    if storage is not None:
        data["storage"] = storage_arg(storage)
    if codec_profiles is not None:
        codec_profiles_arg(data, codec_profiles)
    if overrides:
        base = data.get("storage", api.DEFAULT_STORAGE)
        data["storage"] = (
            {**base, **overrides} if isinstance(base, dict) else {"preset": base, **overrides}
        )
    if reader is not None:
        data["reader"] = reader
    if profile is not None:
        data["profile"] = profile
    if zarr_format is not None or max_objects is not None or checksum:
        cons = dict(data.get("constraints") or {})
        if zarr_format is not None:
            cons["zarr_format"] = int(zarr_format)
        if max_objects is not None:
            cons["max_objects"] = max_objects
        if checksum:
            cons["checksum"] = True
        data["constraints"] = cons
    if codec is not None:
        data.pop("codecs", None)
        data["codec"] = codec
    if top is not None:
        data["top"] = top
    if dataset is not None:
        _advise_dataset(dataset, data, as_json)
        return
    advice = api.advise(data)
    if as_json:
        click.echo(json.dumps(advice_document(advice), indent=2))
    else:
        print_advice(advice, Console(), snippets=not no_snippets, variable=variable)


def _data_variables(path: str, dims: str | None) -> tuple[DatasetSpec, str]:
    """The variables of existing data, and the name of its first (for the snippets)."""
    from chunkwise.io.sources.objects import source_dataset
    from chunkwise.io.sources.readers import open_source, with_dims

    with open_source(path) as source:
        if dims is not None:
            source = with_dims(source, tuple(d.strip() for d in dims.split(",")))
        dataset = source_dataset(source)
        location, _, inner = path.rpartition("#") if "#" in path else (path, "", "")
        name = source.arrays[0].path or inner or Path(location.rstrip("/")).stem
    return dataset, name.rsplit("/", 1)[-1] or "data"


def _advise_dataset(dataset: DatasetSpec, data: dict[str, Any], as_json: bool) -> None:
    """``advise --data`` of a group or multi-variable file: a layout per variable."""
    from chunkwise.model.codec import DEFAULT_CODEC, parse_codec
    from chunkwise.plan.dataset import advise_dataset

    data.pop("array")
    workload = data.pop("workload")
    constraints = data.pop("constraints", None)
    codec = data.get("codec")
    advice = advise_dataset(
        dataset, workload, api.advise,
        whole_codec=parse_codec(codec) if codec is not None else DEFAULT_CODEC,
        constraints=constraints, spec=data,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(advice.to_dict(), indent=2))
    else:
        Console(soft_wrap=True).print(repr(advice), highlight=False, markup=False)


cli.add_command(bench)
cli.add_command(probe)
cli.add_command(calibrate)
cli.add_command(codecs)
cli.add_command(rechunk)
cli.add_command(convert)
cli.add_command(trace)
cli.add_command(inspect)


def main() -> None:
    """Console-script entry point."""
    cli.main(args=sys.argv[1:], prog_name="chunkwise")
