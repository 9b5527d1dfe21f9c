"""The one registry of report writers: each turns the report model into one file of the run.

A new output (the service's e-mail body, a forecast sheet) is one more `Writer` here; the
pipeline writes every registered one, times it, and returns its path. findings.{parquet,json,
csv} are written from the findings themselves (`audit.outputs.findings`), not from the model:
they stay unredacted when the reports are masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from audit.outputs import html, pdf, xlsx
from audit.outputs.model import ReportModel
from audit.store import write_file_atomically


@dataclass(frozen=True)
class Writer:
    name: str  # the file name in the run directory
    timing: str  # its key in the manifest's render timings
    write: Callable[[ReportModel, Path], None]


def _write_html(model: ReportModel, path: Path) -> None:
    path.write_text(html.render_html(model), encoding="utf-8")


def _write_pdf(model: ReportModel, path: Path) -> None:
    pdf.render_pdf(model, path)


def _write_xlsx(model: ReportModel, path: Path) -> None:
    xlsx.render_xlsx(model, path)


# Looked up at call time (not bound at import), so a writer can be replaced in one place.
REPORT_WRITERS = (
    Writer("report.html", "render_html_s", _write_html),
    Writer("report.pdf", "render_pdf_s", _write_pdf),
    Writer("findings.xlsx", "render_xlsx_s", _write_xlsx),
)


def write_reports(model: ReportModel, out_dir: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """Every registered writer's file in `out_dir`, each written atomically: name -> path, and
    name -> seconds."""
    written: dict[str, Path] = {}
    timings: dict[str, float] = {}
    for writer in REPORT_WRITERS:
        t0 = time.perf_counter()
        path = out_dir / writer.name
        write_file_atomically(path, partial(writer.write, model))
        timings[writer.timing] = round(time.perf_counter() - t0, 3)
        written[writer.name] = path
    return written, timings
