"""``make demo``: advise on the built-in examples and print the recommendations."""

from __future__ import annotations

from importlib import resources

from rich.console import Console
from rich.rule import Rule

from chunkwise import api
from chunkwise.report.terminal import print_advice

EXAMPLES = (
    ("cryoet-viewer.yaml", None, "A cryo-ET tomogram in a zarr-v2-only slice viewer, on local SSD"),
    ("era5-timeseries.yaml", None, "An ERA5-like cube on S3, read as pixel time series"),
    ("era5-maps.yaml", None, "The same cube read as global maps"),
    (
        "volume-roi-s3.yaml",
        None,
        "A 2048^3 volume on S3, random 32^3 ROIs, at most 2000 objects (zarr-python)",
    ),
    (
        "volume-roi-s3.yaml",
        "tensorstore",
        "The same, read with tensorstore (inner chunks fetched concurrently)",
    ),
)


def main() -> None:
    """Run every example and print its advice."""
    console = Console(width=max(Console().width, 110))
    folder = resources.files("chunkwise") / "examples"
    for name, reader, title in EXAMPLES:
        console.print(
            Rule(f"[bold]{title}[/bold]  ({name}{', reader ' + reader if reader else ''})")
        )
        with resources.as_file(folder / name) as path:
            advice = api.advise(path, reader=reader)
        print_advice(advice, console, snippets=name == "cryoet-viewer.yaml")
    console.print(
        "\nSpec files live in src/chunkwise/examples/; try "
        "[bold]chunkwise advise src/chunkwise/examples/era5-maps.yaml --json[/bold]."
    )


if __name__ == "__main__":
    main()
