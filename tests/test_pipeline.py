"""analyze as a whole: its outputs are replaced together or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.model import Severity
from audit.outputs import writers
from audit.pipeline import analyze
from tests.report_fixtures import demo_run

OUTPUTS = (
    "findings.csv",
    "findings.json",
    "findings.parquet",
    "report.html",
    "report.pdf",
    "findings.xlsx",
    "remediation.ps1",
    "manifest.json",
)


def test_failed_reanalysis_leaves_the_previous_analysis_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that fails to render halfway (here the PDF) leaves every output of the previous
    analysis as it was, instead of new findings beside an old script and manifest."""
    run = tmp_path / "runs" / "demo"
    shutil.copytree(demo_run().run_dir, run)
    before = {name: (run / name).read_bytes() for name in OUTPUTS}

    def broken_pdf(*_args: object) -> None:
        raise OSError("disk full")

    pdf = next(w for w in writers.REPORT_WRITERS if w.name == "report.pdf")
    monkeypatch.setattr(
        writers,
        "REPORT_WRITERS",
        tuple(
            writers.Writer(w.name, w.timing, broken_pdf) if w is pdf else w
            for w in writers.REPORT_WRITERS
        ),
    )
    with pytest.raises(OSError, match="disk full"):
        analyze(run, redact=True)
    assert {name: (run / name).read_bytes() for name in OUTPUTS} == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def test_tenant_switches_from_config_apply_at_analyze_time(tmp_path: Path) -> None:
    """The snapshot keeps only what Graph said (here: nothing, the call was denied); the
    config's [entra.features] is applied when the run is analysed, so a later
    `analyze --config` can change it."""
    from audit.config import settings_from_dict
    from audit.pipeline import save_run
    from audit.sources.files import import_files
    from tests.sources.helpers import TAKEN_AT, cloud_user, graph_page

    users = tmp_path / "users.json"
    users.write_text(graph_page([cloud_user("u1", "admin@contoso.onmicrosoft.com")]))
    imported_with = settings_from_dict({"entra": {"features": {"block_soft_match": True}}})
    snapshot = import_files(ad=[], cloud=[users], settings=imported_with, taken_at=TAKEN_AT)
    run = save_run(tmp_path / "run", snapshot, imported_with, {})

    def switch(result: object) -> tuple[str, str]:
        findings = result.findings  # type: ignore[attr-defined]
        row = findings.filter(findings["attribute"] == "blockSoftMatchEnabled").row(0, named=True)
        return row["value"], row["detail"].split(":", 1)[0]

    assert switch(analyze(run)) == (
        "true",
        "Tenant switch blockSoftMatchEnabled is true (from config)",
    )
    later = settings_from_dict({"entra": {"features": {"block_soft_match": False}}})
    assert switch(analyze(run, later)) == (
        "false",
        "Tenant switch blockSoftMatchEnabled is false (from config)",
    )
    assert switch(analyze(run, settings_from_dict({}))) == (
        "unknown",
        "Tenant switch blockSoftMatchEnabled is unknown (from unknown)",
    )


def test_a_run_directory_is_input_no_write_follows_a_symlink(tmp_path: Path) -> None:
    """Symlinks planted at the old predictable staging names (and a manifest naming a logo that
    is a symlink to a private file) do not make analyze overwrite or embed anything."""
    import base64
    import json

    run = tmp_path / "runs" / "demo"
    shutil.copytree(demo_run().run_dir, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for name in (".manifest.json.partial", ".report.html.partial", ".findings.csv.partial"):
        (run / name).symlink_to(victim)
    private = tmp_path / "id_rsa"
    private.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    (run / "logo.png").symlink_to(private)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.setdefault("config", {}).setdefault("report", {})["logo"] = "logo.png"
    (run / "manifest.json").write_text(json.dumps(manifest))
    analyze(run)
    assert victim.read_text() == "precious\n"
    html = (run / "report.html").read_text(encoding="utf-8")
    assert base64.b64encode(private.read_bytes()).decode()[:24] not in html
    assert (run / "manifest.json").is_file() and not (run / "manifest.json").is_symlink()


def test_import_analyze_hardmatch_through_the_pipeline_alone(tmp_path: Path) -> None:
    """The library is the product: the three steps run without the CLI, report progress
    through the callback, and name every file they wrote; each named file exists and every
    file in the run directory is named."""
    from audit.demo import write_demo_inputs
    from audit.pipeline import hardmatch, import_exports

    lines: list[str] = []
    inputs = write_demo_inputs(tmp_path / "exports")
    imported = import_exports(
        out=tmp_path / "runs" / "r1", progress=lines.append, **inputs.import_arguments()
    )
    assert lines[0] == "reading exports"
    assert any(line.strip().startswith("ad ") and "complete" in line for line in lines)
    assert imported.counts["ad_users"] == sum(s.rows for s in imported.sources if s.kind == "ad")
    assert set(imported.outputs) == {
        "manifest.json",
        "snapshot/ad_users.parquet",
        "snapshot/cloud_users.parquet",
        "snapshot/cloud_objects.parquet",
        "snapshot/tenant.json",
    }
    assert all(path.is_file() for path in imported.outputs.values())

    lines.clear()
    analyzed = analyze(imported.run_dir, inputs.settings, progress=lines.append)
    assert lines == [
        "reading the snapshot",
        "classifying",
        "building the report model",
        "writing the reports",
        "writing remediation.ps1",
    ]
    assert set(analyzed.outputs) == {*OUTPUTS}
    written = {p.name for p in imported.run_dir.iterdir() if p.is_file()}
    assert written == {*OUTPUTS}
    assert all(analyzed.outputs[name] == imported.run_dir / name for name in OUTPUTS)
    assert analyzed.counts_by_severity["critical"] == 1
    assert analyzed.headline.startswith("1 critical and 48 high findings need action")
    assert analyzed.health.clean == 2911 and analyzed.health.total == 2983
    assert analyzed.fail_on.name == "high" and analyzed.failed

    quiet = analyze(imported.run_dir, inputs.settings, fail_on=Severity.critical)
    assert quiet.failed  # one critical finding

    lines.clear()
    matched = hardmatch(
        imported.run_dir,
        "grady.archie@contoso.com",
        "grady.archie@contoso.com",
        progress=lines.append,
    )
    assert lines == ["reading the snapshot"]
    [(name, script)] = matched.outputs.items()
    assert script.is_file() and name == script.name and script.parent == imported.run_dir
    assert matched.explanation
