"""The commands that carry a layout out: ``rechunk`` and ``convert``."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from chunkwise import api
from chunkwise.cli.common import (
    UserError,
    int_list,
    remote_options,
    storage_arg,
    storage_options,
    user_errors,
)
from chunkwise.io.engines import ENGINE_CHOICES
from chunkwise.model.storage import STORAGE_PRESETS
from chunkwise.model.workload import WORKLOAD_PRESETS
from chunkwise.rechunking.convert import ConversionPlan, ConversionResult, MemoryBudgetWarning
from chunkwise.rechunking.executor import VERIFY_MODES, RechunkEvent

__all__ = ["convert", "rechunk"]


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[RechunkEvent], None] | None]:
    """A bar over all bytes the run writes (every pass), with throughput and time left;
    tasks a resumed run finds done count as written."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description:<32}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("starting", total=None)
    counted: dict[tuple[str, str], int] = {}

    def update(event: RechunkEvent) -> None:
        if event.kind == "run-start":
            bar.update(task, total=event.nbytes)
            return
        if event.kind == "verify-done" or not event.total:
            return
        key = (event.array, event.stage)
        done = event.stage_bytes * event.done // event.total
        bar.advance(task, done - counted.get(key, 0))
        counted[key] = done
        label = f"{event.array + ': ' if event.array else ''}{event.stage}"
        bar.update(task, description=label[:32])

    with bar:
        yield update


def _layout_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("source"),
        click.argument("target"),
        click.option("--chunks", help="Target chunk shape, e.g. 1024,32,32 (-1: whole dim)."),
        click.option("--shards", help="Target shard shape (zarr v3), a multiple of --chunks."),
        click.option("--codec", help="Compressor, e.g. blosc:zstd:5:shuffle, zstd:3, none."),
        click.option(
            "--checksum",
            is_flag=True,
            help="Store a crc32c checksum with every chunk (zarr v3): damage is detected "
            "on read instead of decoding to wrong values.",
        ),
        click.option("--zarr-format", type=click.Choice(["2", "3"]), help="Target Zarr format."),
        click.option(
            "--dims",
            help="Names of the dims of a source that has none (.npy, TIFF, MRC), e.g. z,y,x.",
        ),
        click.option(
            "--skip",
            multiple=True,
            metavar="VAR",
            help="Leave out this array or variable (repeat for several); the summary lists it.",
        ),
        click.option(
            "--workload",
            help=f"Let advise choose the layout: a preset ({', '.join(WORKLOAD_PRESETS)}) "
            "or a spec file.",
        ),
        click.option(
            "--storage",
            help=f"With --workload: storage preset ({', '.join(STORAGE_PRESETS)}) or a "
            "chunkwise probe file.",
        ),
        click.option(
            "--max-mem",
            default=api.DEFAULT_MAX_MEM,
            show_default=True,
            help="Memory budget of the run (per worker with --dask).",
        ),
        click.option("--threads", type=int, help="Tasks at once (default: cores, at most 4)."),
        click.option("--dask", help="Run on Dask: tcp://host:8786, or local:N worker processes."),
        click.option(
            "--workers",
            type=int,
            help="With --dry-run: plan and estimate for N Dask workers (--threads each, "
            "default 1) without starting or connecting to any.",
        ),
        click.option(
            "--verify",
            type=click.Choice(VERIFY_MODES),
            default=VERIFY_MODES[0],
            show_default=True,
            help="readback: read every written region back and compare it bit for bit; "
            "full: also compare all of source and target again at the end; none: skip.",
        ),
        click.option(
            "--engine",
            type=click.Choice(ENGINE_CHOICES, case_sensitive=False),
            default=ENGINE_CHOICES[0],
            show_default=True,
            help="Who encodes, decodes and stores chunks: zarrs (Rust; local "
            "directories), zarr (zarr-python's own), auto: zarrs when installed and the "
            "target is a local directory.",
        ),
        click.option("--overwrite", is_flag=True, help="Replace an existing target."),
        click.option("--dry-run", is_flag=True, help="Print the plan; write nothing."),
        click.option("--json", "as_json", is_flag=True, help="Print the plan or result as JSON."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return remote_options(func)


def _pyramid_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--ome-zarr",
            is_flag=True,
            help="Write an OME-Zarr image pyramid (NGFF 0.4 on --zarr-format 2, 0.5 on 3), "
            "each level laid out for a viewer (default --workload pyramid-viewer).",
        ),
        click.option(
            "--levels",
            type=int,
            help="Pyramid levels, level 0 included (default: until the top is at most 256 "
            "pixels across or one chunk).",
        ),
        click.option(
            "--downsample",
            help="Axes halved at every level, e.g. y,x (default: y,x, and z where voxels "
            "are near-isotropic).",
        ),
        click.option(
            "--method",
            type=click.Choice(["mean", "nearest", "mode"]),
            help="How a window becomes one voxel: mean (intensities), mode (labels: the "
            "most frequent label), nearest (the first voxel).",
        ),
        click.option(
            "--units",
            help="Axis units: one for every space axis (nanometer) or per axis "
            "(z=nanometer,t=second); default: from the source (MRC, TIFF).",
        ),
        click.option(
            "--voxel-size",
            help="Size of a voxel per axis in its unit: 4,1,1 (one per dim) or z=4,y=1,x=1; "
            "default: from the source, else 1.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


#: An example of each name=value option.
_EXAMPLES = {"--units": "z=nanometer,y=nanometer,x=nanometer", "--voxel-size": "z=4,y=1,x=1"}


def _pairs(text: str | None, what: str) -> dict[str, str] | None:
    """``z=nanometer,y=...`` as a mapping; ``None`` when not given."""
    if text is None:
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(
                f"{what} {text!r} must be name=value pairs, e.g. {what} {_EXAMPLES[what]}."
            )
        if name.strip() in out:
            raise UserError(f"{what} {text!r} gives axis {name.strip()!r} twice; give it once.")
        out[name.strip()] = value.strip()
    return out


def _units(text: str | None) -> str | dict[str, str] | None:
    if text is None or "=" not in text:
        return text
    return _pairs(text, "--units")


def _voxel_size(text: str | None) -> tuple[float, ...] | dict[str, float] | None:
    if text is None:
        return None
    pairs = _pairs(text, "--voxel-size") if "=" in text else None
    values = list(pairs.values()) if pairs is not None else text.split(",")
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise UserError(
            f"--voxel-size {text!r} must be numbers, e.g. --voxel-size 4,1,1 or z=4,y=1,x=1."
        ) from None
    if pairs is not None:
        return dict(zip(pairs, numbers, strict=True))
    return tuple(numbers)


def _run(require_layout: bool, **kw: Any) -> None:
    storage = storage_arg(kw["storage"]) if kw["storage"] else None
    if (
        storage is not None
        and kw["workload"] is None
        and not kw.get("ome_zarr")
        and not kw["dry_run"]  # a dry run prices its requests and time on it
    ):
        raise UserError(
            "--storage only matters with --workload or --dry-run; add one of them or drop it."
        )
    options = storage_options(kw["endpoint_url"], kw["storage_option"])
    show = not kw["quiet"] and not kw["as_json"] and sys.stderr.isatty()
    with _progress_bar(show) as bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", MemoryBudgetWarning)  # said below, as one line
        result = api.rechunk(
            kw["source"],
            kw["target"],
            chunks=int_list(kw["chunks"], "--chunks"),
            shards=int_list(kw["shards"], "--shards"),
            codec=kw["codec"],
            zarr_format=int(kw["zarr_format"]) if kw["zarr_format"] else None,
            workload=kw["workload"],
            storage=storage,
            max_mem=kw["max_mem"],
            threads=kw["threads"],
            dask=kw["dask"],
            overwrite=kw["overwrite"],
            verify=kw["verify"],
            engine=kw["engine"],
            dry_run=kw["dry_run"],
            storage_options=options,
            events=bar,
            require_layout=require_layout,
            checksum=kw["checksum"],
            dims=_names(kw["dims"]),
            skip=kw["skip"],
            ome_zarr=kw.get("ome_zarr", False),
            levels=kw.get("levels"),
            downsample=_names(kw.get("downsample")),
            method=kw.get("method"),
            units=_units(kw.get("units")),
            voxel_size=_voxel_size(kw.get("voxel_size")),
            workers=kw["workers"],
        )
    console = Console(soft_wrap=True)
    if isinstance(result, ConversionPlan):
        if kw["as_json"]:
            click.echo(json.dumps(plan_document(result), indent=2))
        else:
            for line in result.describe():
                console.print(line, highlight=False, markup=False)
        return
    if kw["as_json"]:
        click.echo(json.dumps(result_document(result), indent=2))
    else:
        for line in result.summary():
            console.print(line, highlight=False, markup=False)
    if result.over_budget:
        click.echo(f"Warning: {result.budget_warning()}", err=True)
        sys.exit(OVER_BUDGET_EXIT)


def _names(text: str | None) -> tuple[str, ...] | None:
    """``--dims z,y,x`` as names."""
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(","))


#: Exit status of a run that finished and verified its target but measured itself above
#: its memory budget.
OVER_BUDGET_EXIT = 3


def plan_document(plan: ConversionPlan) -> dict[str, Any]:
    """The plan as JSON (``--dry-run --json``)."""
    return {
        "source": plan.source_url,
        "target": plan.target_url,
        "zarr_format": plan.zarr_format,
        "is_group": plan.is_group,
        "max_mem": plan.max_mem,
        "peak_memory": plan.peak_memory,
        "executor": plan.executor,
        "target_state": plan.target_state or None,
        "skipped": list(plan.skipped),
        "not_advised": plan.not_advised(),
        "pyramid": plan.pyramid.to_dict() if plan.pyramid is not None else None,
        "arrays": [
            {
                "path": job.path,
                "shape": list(job.source.shape),
                "dtype": str(job.source.dtype),
                "source_chunks": list(job.source.chunks),
                "chunks": list(job.layout.chunks),
                "shards": list(job.layout.shards) if job.layout.shards else None,
                "codec": str(job.layout.codec),
                "decision": job.decision,
                "passes": len(job.plan.stages),
                "intermediate_chunks": list(job.plan.intermediate_chunks or []) or None,
                "stages": [
                    {
                        "name": s.name,
                        "tasks": s.tasks,
                        "task_shape": list(s.task_shape),
                        "parallel": s.parallel,
                        "memory_per_task": s.memory_per_task,
                        "peak_memory": s.peak_memory,
                        "bytes_read": s.bytes_read,
                        "bytes_written": s.bytes_written,
                    }
                    for s in job.plan.stages
                ],
                "estimate": job.estimate.to_dict() if job.estimate is not None else None,
            }
            for job in plan.jobs
        ],
    }


def result_document(result: ConversionResult) -> dict[str, Any]:
    """The run as JSON (``--json``)."""
    return {
        "plan": plan_document(result.plan),
        "seconds": result.seconds,
        "resumed": result.resumed,
        "peak_rss": result.peak_rss,
        "peak_rss_added": result.peak_added,
        "over_budget": result.over_budget,
        "levels_checked": result.levels_checked,
        "arrays": {
            path: {
                "tasks_run": r.tasks_run,
                "tasks_skipped": r.tasks_skipped,
                "bytes_moved": r.bytes_moved,
                "seconds": r.seconds,
                "verified": r.verified,
            }
            for path, r in result.results.items()
        },
    }


@click.command()
@_layout_options
@user_errors
def rechunk(**kw: Any) -> None:
    """Copy SOURCE into TARGET with new chunks, shards and codec, within --max-mem.

    SOURCE is a Zarr array or group (directory, .zip, s3://; #path picks a member), .npy,
    HDF5/NetCDF-4 (#path picks a dataset), a TIFF file/folder/glob or an MRC file. TARGET
    is a new directory or s3://bucket/prefix. Give the layout with --chunks (and --shards,
    --codec) or let advise choose it with --workload. A killed run resumes when the same
    command is run again; the result is verified against the source.

    Exit status: 0 done (or already done by the same command), 2 bad input or a store
    that cannot be read or written (one sentence, nothing half-claimed as done), 3 done
    and verified but the run measured itself above --max-mem.
    """
    _run(True, **kw)


@click.command()
@_layout_options
@_pyramid_options
@user_errors
def convert(**kw: Any) -> None:
    """Convert SOURCE (HDF5, NetCDF-4, TIFF, MRC, .npy or Zarr) into a Zarr TARGET.

    Keeps the source's chunks unless --chunks or --workload says otherwise; everything
    else is as in rechunk: bounded memory, resumable, verified.

    With --ome-zarr, TARGET is an OME-Zarr image pyramid of SOURCE's one image, for
    viewers (napari, neuroglancer, vizarr): every level laid out for its own shape and
    checked.
    """
    _run(False, **kw)
