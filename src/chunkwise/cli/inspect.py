"""``chunkwise inspect``: what an existing store holds, what its layout costs, what to fix."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click
from rich.console import Console

from chunkwise import api
from chunkwise.cli.common import (
    profile_option,
    remote_options,
    storage_arg,
    storage_options,
    user_errors,
)
from chunkwise.model.storage import STORAGE_PRESETS
from chunkwise.model.workload import WORKLOAD_PRESETS
from chunkwise.plan.findings import SEVERITIES
from chunkwise.plan.ome_lint import VIEWERS

__all__ = ["inspect"]

_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}


@click.command()
@click.argument("url")
@click.option(
    "--complete",
    is_flag=True,
    help="List every key with its size: objects, stored bytes, initialized chunks, ratio. "
    "Without it only metadata is read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON document.")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    help="Exit with status 1 when any finding is at or above this severity (for CI).",
)
@click.option(
    "--workload",
    help=f"Compare the current layout with advise's best for a workload: a preset "
    f"({', '.join(WORKLOAD_PRESETS)}) or a spec file.",
)
@click.option(
    "--storage",
    help=f"Storage the findings and predictions assume: a preset ({', '.join(STORAGE_PRESETS)}) "
    "or a chunkwise probe file; default: from the URL.",
)
@click.option(
    "--viewer",
    metavar="NAME",
    help=f"The viewer OME-Zarr images are for: a Zarr format it cannot read is a finding "
    f"(known: {', '.join(VIEWERS)}; vizarr reads format 2 only).",
)
@profile_option
@remote_options
@user_errors
def inspect(
    url: str,
    complete: bool,
    as_json: bool,
    fail_on: str | None,
    workload: str | None,
    storage: str | None,
    viewer: str | None,
    profile: str | None,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
) -> None:
    """Report the groups and arrays of the Zarr store at URL, their layout, and findings.

    URL is a directory, a .zip, s3://bucket/prefix or https://. Each finding has a stable
    rule id (CW101 ...), a severity (info < warning < error), the evidence and a fix.
    OME-Zarr images are shown with their axes and levels, and their pyramids are linted
    (CW201 ...); --viewer NAME also checks the Zarr format against that viewer.
    With --fail-on SEVERITY the exit status is 1 when a finding is at or above it.
    """
    options = storage_options(endpoint_url, storage_option)
    report = api.inspect(
        url,
        complete=complete,
        workload=workload,
        storage=storage_arg(storage) if storage else None,
        storage_options=options,
        profile=profile,
        viewer=viewer,
    )
    remote = _remote_flags(endpoint_url)
    if as_json:
        document: dict[str, Any] = report.to_json()
        for comp in document["comparisons"]:
            if comp["command"]:
                comp["command"] += remote
        click.echo(json.dumps(document, indent=2))
    else:
        console = Console(soft_wrap=True, highlight=False)
        for line in report.lines():
            if line.lstrip().startswith("move the data:"):
                line += remote
            severity = line[2:].partition(" ")[0] if line.startswith("  ") else ""
            console.print(line, style=_STYLE.get(severity), markup=False)
    if fail_on is not None and report.fails(fail_on):
        sys.exit(1)


def _remote_flags(endpoint_url: str | None) -> str:
    """``--endpoint-url`` again, for the printed rechunk commands (never ``--storage-option``,
    which may hold credentials)."""
    return f" --endpoint-url {shlex.quote(endpoint_url)}" if endpoint_url else ""
