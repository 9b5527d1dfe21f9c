"""`syncaudit run` on a live tenant (the Graph emulator through the real msgraph-sdk): the
second cycle asks Graph only for what changed (a delta collection) and its history is exactly
the change made between the cycles."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from audit.cli import main
from tests.graph.configs import SECRET_ENV, entra_toml, entra_values
from tests.graph.emulator import GraphEmulator
from tests.graph.tenant import user

ERROR = {
    "category": "PropertyConflict",
    "occurredDateTime": "2026-11-20T10:00:00Z",
    "propertyCausingError": "ProxyAddresses",
    "value": "SMTP:shared@contoso.example",
}


def test_two_live_cycles_the_second_a_delta_with_its_history(
    graph_emulator: GraphEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SECRET_ENV, graph_emulator.client_config().client_secret or "")
    config = tmp_path / "syncaudit.toml"
    config.write_text(
        '[run]\ndata_dir = "data"\n\n' + entra_toml(entra_values(graph_emulator)),
        encoding="utf-8",
    )
    assert main(["run", "--config", str(config)]) in (0, 1)
    time.sleep(1.1)  # a live read is taken "now", to the second: the next one is later
    graph_emulator.tenant.users.create(
        user("gina@contoso.example", synced=True, onPremisesProvisioningErrors=[ERROR])
    )
    capsys.readouterr()
    assert main(["run", "--config", str(config)]) in (0, 1)
    runs = sorted((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 2
    manifest = json.loads((runs[1] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["collection"]["entra"]["kind"] == "delta"
    since = manifest["analyzed"]["since_previous"]
    assert (since["previous_run"], since["resolved"]) == (runs[0].name, 0)
    findings = json.loads((runs[1] / "findings.json").read_text(encoding="utf-8"))["findings"]
    new = sorted((f["code"], f["cloud_upn"]) for f in findings if f["status"] == "new")
    assert new == [("provisioning-error", "gina@contoso.example")]  # the one change
    assert since["new"] == 1
