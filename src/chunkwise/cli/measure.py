"""The measuring commands: ``bench``, ``probe`` and ``codecs``."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chunkwise import api
from chunkwise.cli.common import (
    UserError,
    profile_option,
    remote_options,
    storage_arg,
    storage_options,
    user_errors,
)
from chunkwise.units import format_bytes, format_rate

if TYPE_CHECKING:
    from chunkwise.measure.results import BenchReport

__all__ = ["bench", "codecs", "probe"]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    console = Console(stderr=True)
    # Off a terminal the bar would only leave a blank line (before an error, too).
    if not enabled or not console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("starting", total=None)

    def update(message: str, done: int, total: int) -> None:
        bar.update(task, description=message[:40], completed=done, total=total)

    with bar:
        yield update


@click.command()
@click.argument("spec")
@click.option(
    "--data",
    required=True,
    help="path.npy, a Zarr array (store.zarr#array), sample:air-temperature, "
    "synthetic:smooth or synthetic:tomogram.",
)
@click.option(
    "--store",
    default="memory://",
    show_default=True,
    help="Where layouts are written: a directory, memory://, zip:///dir, s3://bucket/prefix, "
    "emulated://?latency=20ms&bandwidth=200MB/s.",
)
@click.option(
    "--storage",
    help="Storage profile for the predictions: a preset or a file from chunkwise probe "
    "(default: the store's own).",
)
@click.option("--region", help="Benchmark a box of the data, e.g. z=0:128,y=0:256.")
@click.option(
    "--top",
    type=int,
    default=api.DEFAULT_BENCH_TOP,
    show_default=True,
    help="How many of advise's recommendations to measure.",
)
@click.option(
    "--repeats",
    type=int,
    default=api.DEFAULT_REPEATS,
    show_default=True,
    help="Random positions per operation.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the positions.")
@click.option("--no-warm", is_flag=True, help="Do not time warm re-reads.")
@click.option("--no-baselines", is_flag=True, help="Skip zarr auto, Dask auto and rule of thumb.")
@click.option("--only-candidates", is_flag=True, help="Measure only the spec's candidates.")
@click.option("--keep", is_flag=True, help="Keep the written layouts.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document to stdout.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write a CSV file.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Write a Markdown report.")
@click.option("--html", type=click.Path(dir_okay=False), help="Write a self-contained HTML report.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Write bench.html, bench.md, bench.csv and bench.json into this directory.",
)
@click.option(
    "--save-profile",
    type=click.Path(dir_okay=False),
    help="Re-fit the priced reader's CPU per chunk, time per call and time per request to "
    "the measured reads "
    "and write the profile here (for --profile FILE of advise, bench and inspect).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@profile_option
@remote_options
@user_errors
def bench(
    spec: str,
    data: str,
    store: str,
    storage: str | None,
    region: str | None,
    top: int,
    repeats: int,
    seed: int,
    no_warm: bool,
    no_baselines: bool,
    only_candidates: bool,
    keep: bool,
    as_json: bool,
    csv_path: str | None,
    markdown: str | None,
    html: str | None,
    out: str | None,
    save_profile: str | None,
    quiet: bool,
    profile: str | None,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
) -> None:
    """Write candidate layouts of the data in --data to --store and time SPEC's workload."""
    from chunkwise.report.bench import bench_csv, bench_json, bench_markdown, print_bench
    from chunkwise.report.html import bench_html, write_report_files

    for flag, name in (
        ("--csv", csv_path), ("--markdown", markdown), ("--html", html),
        ("--save-profile", save_profile),
    ):  # fmt: skip
        if name is not None and not Path(name).resolve().parent.is_dir():
            raise UserError(
                f"{flag} {name!r}: folder {str(Path(name).resolve().parent)!r} does not exist; "
                "create it or write the report elsewhere."
            )
    with _progress(not quiet) as progress:
        report = api.bench(
            spec, data=data, store=store,
            storage=storage_arg(storage) if storage is not None else None,
            region=region, top=top, baselines=not no_baselines,
            only_candidates=only_candidates, repeats=repeats, seed=seed, warm=not no_warm,
            storage_options=storage_options(endpoint_url, storage_option), keep=keep,
            progress=progress, profile=profile,
        )  # fmt: skip
    words = ["chunkwise", "bench", spec, "--data", data, "--store", store]
    for flag, value in (
        ("--storage", storage), ("--region", region), ("--endpoint-url", endpoint_url),
        ("--profile", profile),
    ):  # fmt: skip
        if value is not None:
            words += [flag, value]
    words += ["--top", str(top), "--repeats", str(repeats), "--seed", str(seed)]
    words += [flag for flag, on in (("--no-warm", no_warm), ("--no-baselines", no_baselines),
              ("--only-candidates", only_candidates)) if on]  # fmt: skip
    report = replace(report, machine={**report.machine, "command": shlex.join(words)})
    written: list[Path] = []
    for name, render in ((csv_path, bench_csv), (markdown, bench_markdown), (html, bench_html)):
        if name is not None:
            Path(name).write_text(render(report), encoding="utf-8")
            written.append(Path(name))
    if out is not None:
        written.extend(write_report_files(report, Path(out)).values())
    fitted = _save_profile(report, Path(save_profile), shlex.join(words)) if save_profile else None
    if as_json:
        click.echo(bench_json(report))
    else:
        # Piped output (files, CI logs) gets room for the whole table.
        print_bench(report, Console(width=None if sys.stdout.isatty() else 160))
    for path in written:
        click.echo(f"wrote {path}", err=as_json)
    if fitted is not None:
        click.echo(fitted, err=as_json)


def _write_profile(path: Path, text: str, option: str) -> None:
    """Write a profile file (making its folder), or say in one sentence why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot write the profile to {str(path)!r} ({exc.strerror or exc}); give "
            f"{option} a writable place."
        ) from None


def _save_profile(report: BenchReport, path: Path, command: str) -> str:
    """Re-fit the priced reader to ``report``'s reads, write the profile to ``path``, and
    say what changed."""
    from chunkwise.measure.calibrate import FIT_TOLERANCE, refit_profile
    from chunkwise.units import parse_duration

    fit = refit_profile(report)
    reader = report.storage.reader
    settings = fit.document["reader"]
    text = yaml.safe_dump(fit.document, sort_keys=False)
    _write_profile(path, f"# {command} --save-profile {path}\n{text}", "--save-profile")
    changes = ", ".join(
        f"{what} {old * 1e3:.3g} -> {parse_duration(settings[key]) * 1e3:.3g} ms"
        for what, key, old in (
            ("CPU per chunk", "per_chunk_cpu", reader.per_chunk_cpu_s),
            ("time per call", "per_call", reader.per_call_s),
            ("time per request", "per_request", reader.per_request_s),
        )
    )
    return (
        f"wrote {path}: {reader.name} fitted to {fit.operations} measured reads, {changes}; "
        f"predictions within {FIT_TOLERANCE}x: {fit.within_before} -> {fit.within_after} of "
        f"{fit.operations}. Use it with --profile {path}."
    )


@click.command()
@click.argument("store")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the storage profile (YAML) for advise --storage / bench --storage.",
)
@click.option("--name", default="probed", show_default=True, help="Name of the profile.")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@remote_options
@user_errors
def probe(
    store: str,
    out: str | None,
    name: str,
    as_json: bool,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
) -> None:
    """Measure STORE's latency, bandwidth and useful concurrency; write a storage profile."""
    from chunkwise.io.stores import open_target
    from chunkwise.measure.probe import probe_store

    target = open_target(store, storage_options(endpoint_url, storage_option))
    if target.kind == "zip":
        raise UserError(
            f"store {store!r} is a zip target, and a zip file cannot delete what the probe "
            "writes; probe the directory or object store the zip files will live on."
        )
    try:
        result = probe_store(target.open("probe"), description=target.describe())
    except BaseException:
        with contextlib.suppress(Exception):  # never hide the error that stopped the probe
            target.cleanup()
        raise
    target.cleanup()
    profile = {"storage": result.to_storage_spec(name)}
    if out is not None:
        Path(out).write_text(
            f"# chunkwise probe {store}\n" + yaml.safe_dump(profile, sort_keys=False),
            encoding="utf-8",
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(str(result))
        click.echo(yaml.safe_dump(profile, sort_keys=False).rstrip())
    if out is not None:
        click.echo(f"wrote {out}; use it with: chunkwise advise SPEC --storage {out}", err=as_json)


@click.command()
@click.argument("spec", required=False)
@click.option("--data", required=True, help="The data to sample (as for bench --data).")
@click.option("--region", help="Sample a box of the data, e.g. z=0:128,y=0:256.")
@click.option(
    "--codec",
    "codec_list",
    multiple=True,
    help="A codec to profile (repeatable); default: blosc lz4/zstd levels 1/5/9 with "
    "shuffle and bitshuffle, zstd, gzip and none.",
)
@click.option("--sample", "sample_size", default="16MiB", show_default=True, help="Sample size.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write codecs + codec_profiles (YAML) for advise --codec-profiles.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@remote_options
@user_errors
def codecs(
    spec: str | None,
    data: str,
    region: str | None,
    codec_list: tuple[str, ...],
    sample_size: str,
    out: str | None,
    as_json: bool,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
) -> None:
    """Measure compression ratio and speed of codecs on a sample of the data."""
    from chunkwise.io.sources.data import load_data
    from chunkwise.measure.codecs import (
        DEFAULT_PROFILE_CODECS,
        codec_profiles_spec,
        profile_codecs,
        sample_blocks,
    )
    from chunkwise.model.array import ArraySpec
    from chunkwise.spec import load_spec

    array = None
    if spec is not None:
        raw = load_spec(spec).get("array")
        if isinstance(raw, dict):
            array = ArraySpec.create(raw.get("shape", []), raw.get("dtype"), raw.get("dims"))
    loaded = load_data(
        data,
        array=array,
        region=region,
        storage_options=storage_options(endpoint_url, storage_option),
    )
    sample = sample_blocks(loaded.values, _sample_bytes(sample_size))
    measured = profile_codecs(sample, list(codec_list) or list(DEFAULT_PROFILE_CODECS))
    document = {
        "codecs": [m.codec for m in measured],
        "codec_profiles": codec_profiles_spec(measured),
    }
    if out is not None:
        Path(out).write_text(
            f"# chunkwise codecs --data {data}: {format_bytes(sample.nbytes)} sample, one thread\n"
            + yaml.safe_dump(document, sort_keys=False),
            encoding="utf-8",
        )
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in measured], indent=2))
    else:
        table = Table(
            title=f"Codecs on a {format_bytes(sample.nbytes)} sample of {loaded.info.description} (one thread)"
        )
        for column in ("codec", "ratio", "encode", "decode"):
            table.add_column(column, justify="left" if column == "codec" else "right")
        for m in sorted(measured, key=lambda m: -m.ratio):
            table.add_row(
                m.codec, f"{m.ratio:.3f}", format_rate(m.encode_Bps), format_rate(m.decode_Bps)
            )
        Console().print(table)
    if out is not None:
        click.echo(
            f"wrote {out}; use it with: chunkwise advise SPEC --codec-profiles {out}", err=as_json
        )


@click.command()
@click.option(
    "--data",
    default="synthetic:tomogram",
    show_default=True,
    help="The data to calibrate on (as for bench --data); your own data gives your ratios.",
)
@click.option("--region", help="Calibrate on a box of the data, e.g. z=0:128,y=0:256.")
@click.option(
    "--codec",
    "codec_list",
    multiple=True,
    help=f"A codec to calibrate (repeatable); default: {', '.join(api.DEFAULT_CODECS)}.",
)
@click.option("--sample", "sample_size", default="4MiB", show_default=True, help="Sample size.")
@click.option(
    "--reader",
    help="The reader to calibrate: tensorstore, zarrs, or a zarr-python preset; default: "
    "the zarr-python installed here (with its codec pipeline).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the profile here (it is always kept in the cache for --profile cached).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@remote_options
@user_errors
def calibrate(
    data: str,
    region: str | None,
    codec_list: tuple[str, ...],
    sample_size: str,
    reader: str | None,
    out: str | None,
    as_json: bool,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
) -> None:
    """Measure a reader's CPU per chunk and per call, and codec speeds, on this machine.

    Writes a profile that advise, bench and inspect take with --profile FILE (or
    --profile cached, which picks the cached calibration of the spec's reader): the model
    then prices this machine, not the defaults.
    """
    from chunkwise.io.installed import calibration_cache
    from chunkwise.io.sources.data import load_data
    from chunkwise.measure.calibrate import calibration_document
    from chunkwise.measure.codecs import sample_blocks
    from chunkwise.model.array import ArraySpec
    from chunkwise.model.codec import parse_codec

    codecs = [parse_codec(c) for c in (codec_list or api.DEFAULT_CODECS)]
    budget = _sample_bytes(sample_size)
    # Generated data needs a shape: a 64x128x128 float32 volume (4 MiB).
    shape = ArraySpec.create([64, 128, 128], "float32", ["z", "y", "x"])
    loaded = load_data(
        data,
        array=shape if data.startswith("synthetic:") else None,
        region=region,
        storage_options=storage_options(endpoint_url, storage_option),
    )
    sample = sample_blocks(loaded.values, budget)
    document = calibration_document(
        sample, codecs, description=loaded.info.description, reader=reader
    )
    text = yaml.safe_dump(document, sort_keys=False)
    option = f" --reader {reader}" if reader else ""
    header = f"# chunkwise calibrate --data {data}{option}: {format_bytes(sample.nbytes)} sample\n"
    cache = calibration_cache(document["reader"]["preset"])
    targets = [cache] + ([Path(out)] if out is not None else [])
    for path in targets:
        _write_profile(path, header + text, "--out")
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(text.rstrip())
    click.echo(
        f"wrote {', '.join(map(str, targets))}; use it with: chunkwise advise SPEC --profile "
        f"{out if out is not None else 'cached'}",
        err=as_json,
    )


def _sample_bytes(text: str) -> int:
    """``--sample``: a positive size."""
    from chunkwise.units import parse_bytes

    budget = parse_bytes(text, what="--sample")
    if budget < 1:
        raise UserError(f"--sample {text!r} must be a positive size, like 16MiB.")
    return budget
