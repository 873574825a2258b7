"""``make demo``: advise on the built-in examples, then prove the advice with ``bench``.

1. ``advise`` on four example specs (a tomogram viewer, an ERA5-like cube read two ways,
   a big volume on S3).
2. ``bench`` on real climate data (iris sample data) on an emulated slow remote link
   (50 ms per request, 20 MB/s, 6 connections): advise's layouts against zarr's and
   Dask's automatic chunks and the rule of thumb.
3. ``bench`` re-running the CryoET chunking study on a synthetic tomogram in a local
   directory, plus the zarr v3 sharded layouts the study could not test.
4. ``rechunk``: a 64 MiB cube stored as maps is rewritten in 256x32x32 time-series chunks
   within a 48 MiB memory budget, verified, with its measured peak memory.

Reports (HTML, Markdown, CSV, JSON) go to ``./chunkwise-demo/`` (or the folder given
as the first argument); their paths are printed at the end.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from chunkwise import api
from chunkwise.io.sources.data import load_data
from chunkwise.measure.results import Progress
from chunkwise.model.array import ArraySpec
from chunkwise.rechunking.convert import ConversionResult
from chunkwise.rechunking.executor import RechunkEvent
from chunkwise.report.bench import print_bench
from chunkwise.report.html import write_report_files
from chunkwise.report.terminal import print_advice

EXAMPLES = (
    ("cryoet-viewer.yaml", None, "A cryo-ET tomogram in a zarr-v2-only slice viewer, on local SSD"),
    ("era5-timeseries.yaml", None, "An ERA5-like cube on S3, read as pixel time series"),
    ("era5-maps.yaml", None, "The same cube read as global maps"),
    (
        "volume-roi-s3.yaml",
        "tensorstore",
        "A 2048^3 volume on S3, random 32^3 ROIs, at most 2000 objects, read with tensorstore",
    ),
)

#: The emulated remote store of the climate benchmark.
REMOTE = "emulated://?latency=50ms&bandwidth=20MB/s&concurrency=6"


def _advise(console: Console, folder: Path) -> None:
    for name, reader, title in EXAMPLES:
        console.print(
            Rule(f"[bold]advise: {title}[/bold]  ({name}{', reader ' + reader if reader else ''})")
        )
        advice = api.advise(folder / name, reader=reader)
        print_advice(advice, console, snippets=name == "cryoet-viewer.yaml")


def _progress(console: Console) -> Progress:
    def show(message: str, done: int, total: int) -> None:
        console.print(f"  [{done}/{total}] {message}", highlight=False, style="dim")

    return show


def _maps(path: Path, shape: tuple[int, int, int] = (256, 256, 256)) -> None:
    """A (time, y, x) float32 cube of ``synthetic:smooth`` data, one chunk per map."""
    import zarr

    array = ArraySpec.create(shape, "float32", ("time", "y", "x"))
    data = load_data("synthetic:smooth", array=array)
    zarr.create_array(
        path, data=data.values, chunks=(1, *shape[1:]), dimension_names=array.dims,
        overwrite=True,
    )  # fmt: skip


def _rechunk(console: Console, out: Path) -> None:
    source, target = out / "maps.zarr", out / "series.zarr"
    _maps(source)

    def show(event: RechunkEvent) -> None:
        if event.kind == "stage-done":
            console.print(
                f"  {event.stage}: {event.done} tasks in {event.seconds:.1f} s",
                highlight=False, style="dim",
            )  # fmt: skip

    result = api.rechunk(
        source, target, chunks=(256, 32, 32), max_mem="48MiB", overwrite=True, events=show
    )
    assert isinstance(result, ConversionResult)  # not a dry run
    for line in result.summary():
        console.print(f"  {line}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Run the demo; reports go to ``argv[0]`` or ``./chunkwise-demo``."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "chunkwise-demo").resolve()
    console = Console(width=max(Console().width, 160))
    written: list[Path] = []
    with resources.as_file(resources.files("chunkwise") / "examples") as folder:
        _advise(console, folder)
        console.print(
            Rule(
                "[bold]bench: real climate data over an emulated slow link (50 ms, 20 MB/s, 6 connections)"
            )
        )
        climate = api.bench(
            folder / "air-temperature.yaml",
            data="sample:air-temperature",
            store=REMOTE,
            progress=_progress(console),
        )
        print_bench(climate, console)
        console.print(f"[dim]({climate.store})[/dim]")
        written.append(write_report_files(climate, out / "air-temperature")["html"])
        console.print(
            Rule("[bold]bench: the CryoET chunking study, local directory, synthetic tomogram")
        )
        with tempfile.TemporaryDirectory(prefix="chunkwise-demo-") as scratch:
            study = api.bench(
                folder / "cryoet-128.yaml",
                data="synthetic:tomogram",
                store=scratch,
                only_candidates=True,
                progress=_progress(console),
            )
        print_bench(study, console)
        written.append(write_report_files(study, out / "cryoet-128")["html"])
    console.print(
        Rule(
            "[bold]rechunk: a 64 MiB cube of maps rewritten as 256x32x32 time series, 48 MiB budget"
        )
    )
    _rechunk(console, out)
    console.print("\n[bold]HTML reports:[/bold]")
    for path in written:
        console.print(f"  {path}", highlight=False)
    console.print(
        "Try [bold]chunkwise bench src/chunkwise/examples/air-temperature.yaml "
        "--data sample:air-temperature --store 'emulated://?latency=20ms'[/bold]."
    )


if __name__ == "__main__":
    main()
