"""The safety figures: kills, reruns, faults and bad input, counted from the test suites.

Run:  .venv/bin/python benchmarks/bench_safety.py [--write-results]

Runs, in one pytest session, the suites that attack ``rechunk``/``convert`` and the input
parsers, and counts what they did:

* ``tests/rechunking/test_fault_injection.py``: SIGKILLs at every kind of point (before and after
  each store operation, during a write, inside clean-up, during a replacement, at exit;
  on ext4 with several directory hash seeds), each followed by a rerun of the same
  command that must end bit-identical; a state machine interleaving kills, reruns, a
  concurrent second run and full disks; real full, read-only and permission-denied
  filesystems; aliased and dangerous targets; corrupt chunks;
* ``tests/cli/test_input_hardening.py``: bad and fuzzed specs, absurd shapes;
* ``tests/rechunking/test_peer_cases.py``: rechunk cases from rechunker's and dask's own tests;
* ``tests/rechunking/test_rechunk_s3.py``: the lease and replacement on a real S3 server;
* ``tests/rechunking/test_rechunk_memory.py``: measured memory within the projection.

Each of those tests fails on a traceback where one sentence is due, on a wrong exit
status, or on a run that says "verified" with wrong data; the table counts their
outcomes and the kill totals the fault-injection suite prints.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import machine, publish

ROOT = Path(__file__).resolve().parent.parent
SUITES = (
    "tests/rechunking/test_fault_injection.py",
    "tests/cli/test_input_hardening.py",
    "tests/rechunking/test_peer_cases.py",
    "tests/rechunking/test_rechunk_s3.py",
    "tests/rechunking/test_rechunk_memory.py",
)


def run(report: Path) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rP", "-p", "no:cacheprovider", "-q",
         f"--junitxml={report}", *SUITES],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    return done.stdout, done.returncode


def outcomes(report: Path) -> dict[str, dict[str, int]]:
    """Passed and failed tests per suite, from pytest's JUnit XML report."""
    import xml.etree.ElementTree as ET

    counts = {suite: {"passed": 0, "failed": 0} for suite in SUITES}
    for case in ET.parse(report).iter("testcase"):
        module = str(case.get("classname", "")).split(".")[-1] + ".py"
        suite = next((s for s in SUITES if s.endswith("/" + module)), None)
        if suite is not None:
            failed = case.find("failure") is not None or case.find("error") is not None
            counts[suite]["failed" if failed else "passed"] += case.find("skipped") is None
    return counts


def totals(output: str) -> dict[str, int]:
    """The fault-injection suite's running totals, as last printed."""
    found = re.findall(r"totals (\{[^}]*\})", output)
    return ast.literal_eval(found[-1]) if found else {}


def markdown(output: str, report: Path, status: int, command: str) -> str:
    kills = totals(output)
    lines = [
        "## Safety: kills, faults and bad input",
        "",
        f"Command: {command}. Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"pytest exit status {status}.",
        "",
        f"* SIGKILLs: {kills.get('kills', 0)}, each followed by a rerun of the same command; "
        f"reruns {kills.get('reruns', 0)}, bit-identical {kills.get('identical', 0)}; "
        f"state-machine steps (kills, reruns, concurrent runs refused, full disks) "
        f"{kills.get('steps', 0)}.",
        "* Every test below also fails on a traceback where one sentence is due, on a "
        "wrong exit status, or on a run that ends 'verified' with wrong data.",
        "",
        "| suite | passed | failed |",
        "|---|---:|---:|",
    ]
    for suite, count in outcomes(report).items():
        lines.append(f"| `{suite}` | {count['passed']} | {count['failed']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.xml"
        output, status = run(report)
        command = (
            "`" + " ".join([".venv/bin/python benchmarks/bench_safety.py", *sys.argv[1:]]) + "`"
        )
        publish(markdown(output, report, status, command), write=args.write_results)


if __name__ == "__main__":
    main()
