"""Shared inputs of the report tests: the demo analysed once per test session, and a crafted
estate whose directory values are hostile (script tags, spreadsheet formulas)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import polars as pl

from audit.classify import classify
from audit.config import ReportSettings, Settings
from audit.demo import write_demo_inputs
from audit.model import Snapshot
from audit.pipeline import analyze, import_exports
from audit.store import read_snapshot
from tests import factories as f

SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'


@dataclass(frozen=True)
class DemoRun:
    run_dir: Path
    findings: pl.DataFrame
    snapshot: Snapshot
    settings: Settings


@cache
def demo_run() -> DemoRun:
    """The demo estate imported and analysed (reports included) in a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="syncaudit-report-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    inputs = write_demo_inputs(root / "exports")
    run_dir = import_exports(out=root / "runs" / "demo", **inputs.import_arguments()).run_dir
    result = analyze(run_dir, inputs.settings)
    return DemoRun(
        run_dir=run_dir,
        findings=result.findings,
        snapshot=read_snapshot(run_dir),
        settings=inputs.settings,
    )


def hostile_snapshot() -> Snapshot:
    """AD users whose UPN, display name and DN carry HTML and a spreadsheet formula; none of
    them is synced, so they produce findings naming those values (invalid-attribute,
    unmatched-ad, ...)."""
    ad = [
        f.ad_user(
            "evil1",
            upn=f"{SCRIPT}@contoso.com",
            display_name=SCRIPT,
            dn=f"CN={SCRIPT},OU=Staff,DC=corp,DC=contoso,DC=com",
        ),
        f.ad_user(
            "evil2",
            upn=f"{FORMULA}@contoso.com",
            display_name=FORMULA,
            mail_nickname=FORMULA,
            dn='CN==HYPERLINK("http://x"\\,"y"),OU=Staff,DC=corp,DC=contoso,DC=com',
        ),
        f.ad_user("alice"),
    ]
    cloud = [f.cloud_user("alice")]
    return f.snapshot(ad, cloud)


def hostile_findings() -> tuple[pl.DataFrame, Snapshot]:
    snapshot = hostile_snapshot()
    findings = classify(snapshot, f.settings())
    assert findings.height, "the hostile estate must produce findings"
    return findings, snapshot


def settings_with(**report: object) -> Settings:
    base = Settings()
    return replace(base, report=replace(ReportSettings(company="Contoso"), **report))
