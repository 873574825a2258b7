"""The HTML report renders in a real browser: headless Chromium screenshot and DOM."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from bench_report_samples import sample_report
from matplotlib.image import imread

from chunkwise.measure.results import BenchReport
from chunkwise.report.html import write_report_files

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 120


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a throw-away profile and no network side traffic."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: these tests render the HTML report in headless Chromium. "
            "Install it with scripts/system-deps.sh (or: apt-get install chromium)."
        )
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--window-size=1280,2000", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


class _Dom(HTMLParser):
    """Rows of the study table's body, and the text of the recommendation section."""

    def __init__(self) -> None:
        super().__init__()
        self.result_rows: list[dict[str, str | None]] = []
        self.recommendation = ""
        self._table: str | None = None
        self._in_body = False
        self._section_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "table":
            self._table = named.get("id")
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table == "results" and self._in_body:
            self.result_rows.append(named)
        if tag == "section" and (named.get("id") == "recommendation" or self._section_depth):
            self._section_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "section" and self._section_depth:
            self._section_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._section_depth:
            self.recommendation += data


@pytest.fixture(scope="module")
def report() -> BenchReport:
    return sample_report(synthetic=True)


@pytest.fixture(scope="module")
def page(report: BenchReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report_files(report, tmp_path_factory.mktemp("report"))["html"]


def test_screenshot_shows_a_drawn_page(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "bench.png"
    chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000
    pixels = imread(shot, format="png")
    height, width = pixels.shape[:2]
    assert (width, height) == (1280, 2000)
    rgb = pixels[..., :3]
    assert np.ptp(rgb) > 0.5
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100  # text, tables and figures
    # Content reaches down the page, not just a header on a blank canvas.
    assert np.ptp(rgb[height // 2 :]) > 0.5


def test_dom_has_results_and_recommendation(
    page: Path, report: BenchReport, tmp_path: Path
) -> None:
    dom = _Dom()
    dom.feed(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    assert len(dom.result_rows) == len(report.results)
    assert [row.get("class") for row in dom.result_rows].count("recommended") == 1
    assert report.recommendation is not None
    assert report.recommendation in dom.recommendation
