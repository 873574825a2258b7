"""Shared by the benchmarks: the machine line and writing one section of RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """``x86_64, 2 cores, Python 3.11.7, Linux``."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def write_section(section: str) -> Path:
    """Replace the section with ``section``'s heading (its first line) in RESULTS.md, or
    append it."""
    heading = section.splitlines()[0]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
    return RESULTS


def publish(section: str, *, write: bool) -> None:
    """Print ``section``; with ``write``, also put it into RESULTS.md."""
    print()
    print(section)
    if write:
        print(f"wrote {write_section(section)}")
