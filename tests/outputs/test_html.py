"""report.html: self-contained, every finding present, directory values inert."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import polars as pl

from audit.outputs.common import HTML_COLUMNS, script_json
from audit.outputs.html import HTML_PREVIEW_ROWS, render_html
from audit.outputs.model import build_report
from audit.templates import templates_dir
from tests import factories as f
from tests.report_fixtures import (
    FORMULA,
    SCRIPT,
    demo_run,
    hostile_findings,
    settings_with,
)


class ReportParser(HTMLParser):
    """Collects what the tests look at: elements with attributes, script bodies, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script, self._script_text = dict(attrs), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._script_text)))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script_text.append(data)
        else:
            self.text.append(data)

    def with_attr(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _tag, attrs in self.tags if name in attrs]

    def embedded(self) -> dict[str, object]:
        (body,) = [b for attrs, b in self.scripts if attrs.get("id") == "findings-data"]
        data = json.loads(body)
        assert isinstance(data, dict)
        return data


def parse(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser


def demo_html() -> str:
    return (demo_run().run_dir / "report.html").read_text(encoding="utf-8")


def test_every_demo_finding_is_in_the_html() -> None:
    demo = demo_run()
    parser = parse(demo_html())
    data = parser.embedded()
    assert data["columns"] == list(HTML_COLUMNS)
    rows = data["rows"]
    assert isinstance(rows, list)
    fingerprints = {row[0] for row in rows}
    assert fingerprints == set(demo.findings["fingerprint"])
    assert len(rows) == demo.findings.height
    # The rows are the findings' own values, in classify's order.
    first = demo.findings.row(0, named=True)
    assert rows[0][HTML_COLUMNS.index("detail")] == first["detail"]
    # Server-rendered preview rows (readable without JS) are findings too, and every code
    # with at most HTML_PREVIEW_ROWS findings is complete without JavaScript.
    shown = {a["data-fp"] for a in parser.with_attr("data-fp")}
    assert shown <= fingerprints
    small_codes = (
        demo.findings.group_by("code").len().filter(pl.col("len") <= HTML_PREVIEW_ROWS)["code"]
    )
    expected_shown = set(
        demo.findings.filter(pl.col("code").is_in(small_codes.implode()))["fingerprint"]
    )
    assert expected_shown <= shown


def test_summary_counts_match_the_findings() -> None:
    demo = demo_run()
    parser = parse(demo_html())
    counts = {
        a["data-code"]: int(a["data-count"] or 0)
        for _t, a in parser.tags
        if "data-code" in a and "data-count" in a
    }
    assert counts == {c: n for c, n in demo.findings.group_by("code").len().iter_rows()}
    text = " ".join(" ".join(parser.text).split())
    assert "Sync health" in text
    assert "in-scope, enabled AD users are cleanly matched" in text
    for code in counts:
        assert code in text
    # A section per family and per code, each with its explanation and fix.
    ids = {a.get("id") for _t, a in parser.tags}
    for code in counts:
        assert f"code-{code}" in ids
    assert "What it means" in text and "How to fix" in text and "Why it matters" in text


def test_html_is_self_contained() -> None:
    html = demo_html()
    parser = parse(html)
    for tag, attrs in parser.tags:
        assert not (tag == "script" and attrs.get("src")), "external script"
        assert tag != "link", "external stylesheet or icon"
        if tag in ("img", "image", "iframe", "object", "embed", "source", "video", "audio"):
            assert (attrs.get("src") or "data:").startswith("data:")
        if tag != "a" and attrs.get("href"):
            assert str(attrs["href"]).startswith(("#", "data:")), (tag, attrs)
    assert "@import" not in html and "url(http" not in html
    assert "<svg" in html  # the severity chart is inline
    csp = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in str(csp[0]["content"])


def test_script_json_cannot_close_the_script_element() -> None:
    text = str(script_json({"x": "</script><script>alert(1)</script> & <!-- \u2028"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["x"].startswith("</script>")


def test_hostile_directory_values_are_inert_text() -> None:
    findings, snapshot = hostile_findings()
    model = build_report(findings, snapshot, settings_with(), run_id="hostile")
    html = render_html(model)
    parser = parse(html)
    # Only our two script elements exist; the values did not create one.
    assert [a.get("id") or a.get("type") for a, _b in parser.scripts] == ["findings-data", None]
    assert html.count("<script") == 2
    assert "alert(1)" not in parser.scripts[1][1]
    # The data island holds the values with < > & escaped, and they parse back exactly.
    body = parser.scripts[0][1]
    assert "<" not in body and ">" not in body
    values = {v for row in parser.embedded()["rows"] for v in row}  # type: ignore[attr-defined]
    assert f"{SCRIPT}@contoso.com" in values
    assert f"{FORMULA}@contoso.com" in values
    # The server-rendered rows show them as text.
    text = "".join(parser.text)
    assert f"{SCRIPT}@contoso.com" in text
    assert FORMULA in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@contoso.com" in html


def test_empty_estate_renders() -> None:
    snapshot = f.snapshot([f.ad_user("alice")], [f.cloud_user("alice")])
    model = build_report(
        pl.DataFrame(schema={"code": pl.String}), snapshot, settings_with(), run_id="r"
    )
    html = render_html(model)
    assert "No problems found" in html
    assert parse(html).embedded()["rows"] == []


def test_title_company_and_redaction_banner() -> None:
    demo = demo_run()
    settings = settings_with(company="Fabrikam & Sons", title="Sync <audit>")
    from audit.outputs.redact import Redactor

    model = build_report(
        demo.findings, demo.snapshot, settings, run_id="demo", redactor=Redactor(b"k")
    )
    html = render_html(model)
    assert "Fabrikam &amp; Sons" in html and "Sync &lt;audit&gt;" in html
    assert "Redacted: names, UPNs and DNs are masked" in html


def test_trend_charts_appear_with_history_and_escape_run_ids() -> None:
    from audit.outputs.charts import trend_columns
    from audit.outputs.runs import TrendPoint

    demo = demo_run()
    history = [
        TrendPoint("<b>w1</b>", "2026-11-09T06:00:00+00:00", {"high": 50, "medium": 30}, 95.0),
        TrendPoint("w2", "2026-11-16T06:00:00+00:00", {"high": 45, "medium": 29}, None),
    ]
    model = build_report(
        demo.findings, demo.snapshot, demo.settings, run_id="demo", history=history
    )
    html = render_html(model)
    assert 'id="trend"' in html
    assert "Findings per run by severity" in html and "Sync health per run" in html
    assert "<b>w1</b>" not in html
    svg = trend_columns(["<script>x</script>"], [{"high": 1}])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    without = render_html(build_report(demo.findings, demo.snapshot, demo.settings, run_id="d"))
    assert 'id="trend"' not in without


def test_object_cells_break_after_separators_not_mid_word() -> None:
    from audit.outputs.common import breakable

    assert breakable("john.smith@contoso.com") == ("john.<wbr>smith@<wbr>contoso.<wbr>com")
    assert breakable("CN=O'Brien\\, Pat,OU=Staff") == (
        "CN=<wbr>O&#39;Brien\\,<wbr> Pat,<wbr>OU=<wbr>Staff"
    )
    assert breakable("<script>a.b</script>") == "&lt;script&gt;a.<wbr>b&lt;/script&gt;"
    css = (templates_dir() / "report.css").read_text()
    assert "td.obj { min-width: 22ch;" in css and "word-break: break-word" not in css
