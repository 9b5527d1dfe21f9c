"""`syncaudit collect` of a tenant alone, through the real msgraph-sdk and azure-identity against
the Graph emulator (issue 13): a complete run with the tenant's pages kept, and, with the
app-only token Graph refuses the matching switches to, those switches reported as unknown by
their finding instead of failing the run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from audit import pipeline
from audit.cli import main
from audit.config import load_settings
from tests.graph.configs import SECRET_ENV, entra_toml, entra_values
from tests.graph.emulator import GraphEmulator


def write_config(tmp_path: Path, emulator: GraphEmulator) -> Path:
    path = tmp_path / "syncaudit.toml"
    path.write_text(
        '[run]\ndata_dir = "data"\n\n' + entra_toml(entra_values(emulator)), encoding="utf-8"
    )
    return path


def test_an_app_only_run_reports_the_switches_unknown_and_keeps_every_page(
    graph_emulator: GraphEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = graph_emulator.client_config().client_secret or ""
    monkeypatch.setenv(SECRET_ENV, secret)
    config = write_config(tmp_path, graph_emulator)
    assert main(["collect", "--config", str(config)]) == 0
    run_dir = Path(capsys.readouterr().out.removeprefix("run directory: ").strip())
    assert run_dir.parent == (tmp_path / "data" / "runs").resolve()

    manifest = json.loads((run_dir / "manifest.json").read_text())
    raw = manifest["collection"]["raw"]
    assert raw and all(name.startswith("raw/graph/") for name in raw)
    (tenant,) = [s for s in manifest["sources"] if s["kind"] == "tenant"]
    assert tenant["path"] == "raw/graph/tenant.json"  # in the run, not where it was staged
    assert tenant["warnings"] == [
        "a tenant call was refused (Authorization_RequestDenied: Insufficient privileges to "
        "complete the operation.): GET /directory/onPremisesSynchronization needs a delegated "
        "token (OnPremDirectorySynchronization.Read.All), so the matching switches are unknown "
        "unless [entra.features] sets them"
    ]
    cloud = pl.read_parquet(run_dir / "snapshot" / "cloud_users.parquet")
    assert cloud.height == 4  # three users and the soft-deleted one holding an anchor
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path

    # no AD side: what rests on it is held back; the switches' finding says "unknown"
    analyzed = pipeline.analyze(run_dir, load_settings(config))
    switches = analyzed.findings.filter(pl.col("code") == "tenant-matching-settings")
    assert sorted(switches["value"]) == ["unknown", "unknown", "unknown"]
    assert all("(from unknown)" in detail for detail in switches["detail"])
    held = {entry.code for entry in analyzed.held_back if entry.status == "held back"}
    assert "cloud-orphan" in held
