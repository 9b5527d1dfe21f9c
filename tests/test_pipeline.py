"""analyze as a whole: its outputs are replaced together or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit import render
from audit.pipeline import analyze_run
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

    monkeypatch.setattr(render, "render_pdf", broken_pdf)
    with pytest.raises(OSError, match="disk full"):
        analyze_run(run, redact=True)
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

    assert switch(analyze_run(run)) == (
        "true",
        "Tenant switch blockSoftMatchEnabled is true (from config)",
    )
    later = settings_from_dict({"entra": {"features": {"block_soft_match": False}}})
    assert switch(analyze_run(run, later)) == (
        "false",
        "Tenant switch blockSoftMatchEnabled is false (from config)",
    )
    assert switch(analyze_run(run, settings_from_dict({}))) == (
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
    analyze_run(run)
    assert victim.read_text() == "precious\n"
    html = (run / "report.html").read_text(encoding="utf-8")
    assert base64.b64encode(private.read_bytes()).decode()[:24] not in html
    assert (run / "manifest.json").is_file() and not (run / "manifest.json").is_symlink()
