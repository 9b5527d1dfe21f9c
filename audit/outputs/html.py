"""report.html: one self-contained file. CSS, SVG charts and the vanilla JS are inlined; the
findings travel as JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&``
written as ``\\u003c``... so no directory value can close the script element. Jinja2 autoescape
is on for everything else, and the JS builds table cells with ``textContent`` only. The first
rows of every code are also rendered server-side, so the report is readable with scripts off
(mail clients' previews) and prints. A Content-Security-Policy lets only this script run, by
its hash."""

from __future__ import annotations

import polars as pl

from audit.outputs.common import (
    HTML_COLUMNS,
    chart_context,
    environment,
    records,
    script_hash,
    script_json,
    static_asset,
)
from audit.outputs.model import SEVERITIES, ReportModel

HTML_PREVIEW_ROWS = 25


def render_html(model: ReportModel) -> str:
    rows = (
        model.findings.select(
            [pl.col(c).cast(pl.String).fill_null("") for c in HTML_COLUMNS]
        ).rows()
        if model.total
        else []
    )
    payload = {"columns": list(HTML_COLUMNS), "rows": rows}
    previews = {c.code: records(c.head(HTML_PREVIEW_ROWS), HTML_COLUMNS) for c in model.codes}
    template = environment().get_template("report.html.j2")
    js = static_asset("report.js")
    return template.render(
        m=model,
        css=static_asset("report.css"),
        js=js,
        script_hash=script_hash(js),
        data=script_json(payload),
        previews=previews,
        preview_rows=HTML_PREVIEW_ROWS,
        severities=SEVERITIES,
        **chart_context(model),
    )
