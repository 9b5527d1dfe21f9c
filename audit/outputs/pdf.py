"""report.pdf: weasyprint over ``pdf.html.j2``: the management summary, the per-code summary
and the first ``report.pdf_rows_per_code`` objects of each code, then "and M more in
findings.xlsx". The PDF never holds more than codes x N rows, so its time and memory do not
grow with the estate (weasyprint needs ~43 s and 1.2 GB for a 10k-row table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.outputs.common import HTML_COLUMNS, chart_context, environment, records, static_asset
from audit.outputs.model import SEVERITIES, ReportModel
from audit.templates import templates_dir

PDF_CAUSES = 6


def render_pdf_html(model: ReportModel) -> str:
    n = model.pdf_rows_per_code
    rows = {c.code: records(c.head(n), HTML_COLUMNS) for c in model.codes}
    template = environment().get_template("pdf.html.j2")
    return template.render(
        m=model,
        css=static_asset("pdf.css"),
        rows=rows,
        rows_per_code=n,
        severities=SEVERITIES,
        # the causes that fit on the summary page beside the KPIs and the severity chart
        pdf_causes=PDF_CAUSES,
        **chart_context(model),
    )


def render_pdf(model: ReportModel, path: Path) -> None:
    from weasyprint import HTML  # type: ignore[import-untyped]  # lazily: loads Pango

    document = HTML(
        string=render_pdf_html(model), base_url=str(templates_dir()), url_fetcher=pdf_fetcher()
    )
    document.write_pdf(str(path))


def pdf_fetcher() -> Any:
    """Everything the PDF shows is inline (CSS, SVG charts, the logo as a data: URI). Refusing
    every other protocol means no value in the page, and no reference inside an SVG logo, can
    make weasyprint read a local file or reach the network."""
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    return URLFetcher(allowed_protocols={"data"})
