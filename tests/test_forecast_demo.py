"""The forecast on the demo estate and on generated estates: every person's predicted outcome of
the demo's planned scope change, the verdict, agreement with the findings (both ways), the
files, the report section, the CLI and its one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pypdf
import pytest

from audit.classify import classify
from audit.config import Settings
from audit.demo import build_estate
from audit.demo.planned import CONTRACTORS_OU, INTERNS_OU, PLANNED_CHANGE
from audit.forecast import FORECAST_SCHEMA, ForecastError, ScopeChange, forecast, planned_scope
from audit.forecast_run import DemoResult, ForecastResult, demo, run_forecast
from audit.forecast_verdict import NO_GO, verdict
from audit.history import Drop, guarded
from audit.model import Snapshot
from audit.pipeline import analyze
from audit.store import read_snapshot
from benchmarks.scale import EXCLUDED_OU, generate_scale_estate

# The finding codes that predict a failed or wrong match: each names the same person in the
# forecast (finding_codes) and the reverse.
MATCH_CODES = frozenset(
    {
        "anchor-duplicate-ad",
        "anchor-format-invalid",
        "anchor-held-by-deleted",
        "anchor-held-by-other",
        "attribute-conflict-cloud",
        "duplicate-cloud-account",
        "hard-match-blocked",
        "soft-match-blocked",
        "soft-match-pending",
        "unmatched-ad",
    }
)

# The demo's planted problems among people who stay in scope: (outcome, Entra's error name,
# blocker). Everyone else who stays is unchanged; the planned change's own people are in
# Estate.forecast.
STAYING = {
    "Adele Vance": ("error", "InvalidHardMatch", "hard-match-refused"),  # PIM-eligible GA
    "Alex Wilber": ("hard-match", None, None),  # restores the soft-deleted holder
    "Bianca Pisani": ("error", "Existing Admin Role Conflict", "admin-role-conflict"),
    "Chris Green": ("update", None, None),  # enabled in AD, disabled in the cloud
    "Christie Cline": ("soft-match", None, None),
    "Debra Berger (test)": ("error", None, "duplicate-anchor"),
    "Debra Berger": ("error", None, "duplicate-anchor"),
    "Diego Siciliani": ("hard-match", None, None),
    "Enrico Cattaneo (adm)": ("error", None, "duplicate-anchor"),
    "Enrico Cattaneo": ("error", None, "duplicate-anchor"),
    "Ezra Klein": ("error", "InvalidHardMatch", "hard-match-refused"),
    "Fatima Zahra": ("create", None, None),
    "Grady Archie": ("error", "InvalidSoftMatch", "invalid-soft-match"),
    "Greg Winston": ("update", None, None),
    "Helpdesk": ("error", "ObjectTypeMismatch", "object-type-mismatch"),
    "Isaiah Langer": ("update", None, "wrong-person"),
    "Johanna Lorenz": ("error", "InvalidSoftMatch", "invalid-soft-match"),  # misencoded anchor
    "John Smith": ("update", None, "duplicate-account"),
    "Joni Sherman": ("error", "InvalidSoftMatch", "invalid-soft-match"),
    "Kaito Nakamura": ("soft-match", None, None),
    "Leah Porter": ("update", None, None),
    "Lidia Holloway": ("error", "AttributeValueMustBeUnique", "address-not-unique"),  # contact
    "Lynne Robbins": ("error", "InvalidSoftMatch", "invalid-soft-match"),
    "Marco Rossi": ("update", None, None),  # federated: the UPN change flows
    "Megan Bowen": ("hard-match", None, "restore-collides"),
    "Miriam Graham": ("error", "InvalidSoftMatch", "invalid-soft-match"),
    "Nadia Okafor": ("hard-match", None, None),
    "Nestor Wilke": ("update", None, "wrong-person"),
    "Nora Lindqvist": ("create", None, None),
    "Omar Haddad": ("error", "InvalidSoftMatch", "invalid-soft-match"),
    "Patti Fernandez": ("error", "AttributeUpdateNotAllowed", "hard-match-refused"),
    "Priya Raman": ("soft-match", None, None),
    "Raul Razo": ("create", None, None),
    "Ravi Shankar": ("error", "InvalidHardMatch", "hard-match-refused"),
    "Samir Patel": ("create", None, "unverified-upn-suffix"),
    "Sara Davis": ("update", None, "duplicate-account"),
    "Tara Singh": ("update", None, None),
    "Tomasz Kowalski": ("create", None, None),
    "Wendy Tran": ("error", "Existing Admin Role Conflict", "admin-role-conflict"),
    "svc-sharepoint-crawler01": ("create", None, None),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return demo(tmp_path_factory.mktemp("forecast") / "demo")


@pytest.fixture(scope="module")
def forecasted(built: DemoResult) -> ForecastResult:
    """The demo run forecast again through the library call the CLI makes."""
    return run_forecast(built.analyzed.run_dir, built.analyzed.settings, PLANNED_CHANGE)


@pytest.fixture(scope="module")
def people(forecasted: ForecastResult) -> pl.DataFrame:
    return pl.read_parquet(forecasted.run_dir / "forecast.parquet")


def cn(dn: str) -> str:
    return dn.split(",")[0].removeprefix("CN=").replace("\\,", ",")


def test_every_persons_outcome_of_the_planned_change(forecasted: ForecastResult, people) -> None:
    snapshot = read_snapshot(forecasted.run_dir)
    planted = build_estate().forecast
    staying = snapshot.ad_users.filter(pl.col("in_scope")).get_column("dn").to_list()
    expected: dict[str, tuple[str | None, ...]] = {}
    for dn in staying:
        if dn.endswith(INTERNS_OU):
            continue
        outcome, error, blocker = STAYING.get(cn(dn), ("unchanged", None, None))
        expected[dn] = (outcome, error, blocker)
    got = {r[0]: r[1:] for r in people.select("ad_dn", "outcome", "error", "blocker").iter_rows()}
    for dn, (outcome, error) in planted.items():
        assert dn in got, dn
        assert got.pop(dn)[:2] == (outcome, error), dn
    assert got == expected
    assert len(planted) == 10 and all(INTERNS_OU in d or CONTRACTORS_OU in d for d in planted)


def test_predicted_upns_of_the_people_entering(people) -> None:
    entering = dict(
        people.filter(pl.col("scope") == "enters").select("ad_upn", "predicted_upn").iter_rows()
    )
    assert entering == {
        "quirin.halvorsen@contoso.com": "quirin.halvorsen@contoso.com",
        "rocio.delgado@contoso.com": "rocio.delgado@contoso.com",
        "sven.aalto@contoso.com": "sven.aalto####@contoso.onmicrosoft.com",
        "tariq.nasser@contoso.com": None,
        "uma.krishnan@contractors.local": "uma.krishnan@contoso.onmicrosoft.com",
        "viktor.horvath@contoso.com": "viktor.horvath@contoso.com",
        "wanda.kowalczyk@contoso.com": "wanda.kowalczyk####@contoso.onmicrosoft.com",
    }


def test_the_verdict_of_the_planned_change(forecasted: ForecastResult) -> None:
    v = forecasted.verdict
    assert v.decision == NO_GO
    assert v.counts == {
        "unchanged": 2942, "update": 9, "hard-match": 5, "soft-match": 4, "create": 9,
        "error": 20, "soft-delete": 3,
    }  # fmt: skip
    assert [(b.kind, b.people, b.no_go) for b in v.blockers] == [
        ("invalid-soft-match", 6, False),
        ("duplicate-anchor", 4, True),
        ("hard-match-refused", 4, False),
        ("admin-role-conflict", 3, False),
        ("address-not-unique", 2, False),
        ("duplicate-account", 2, False),
        ("unverified-upn-suffix", 2, False),
        ("wrong-person", 2, True),
        ("object-type-mismatch", 1, False),
        ("quarantine", 1, False),
        ("restore-collides", 1, False),
    ]
    stored = json.loads((forecasted.run_dir / "forecast.json").read_text("utf-8"))
    assert stored["decision"] == NO_GO and stored["deletions"] == 3
    assert stored["change"] == PLANNED_CHANGE.sentence()


def test_a_large_exclusion_stops_the_export(forecasted: ForecastResult) -> None:
    snapshot = read_snapshot(forecasted.run_dir)
    sales = "OU=Sales,OU=Users,DC=corp,DC=contoso,DC=com"
    decided = verdict(forecast(snapshot, Settings(), ScopeChange(exclude_ous=(sales,))))
    assert decided.decision == NO_GO
    first = decided.blockers[0]
    assert (first.kind, first.people) == ("deletion-threshold", decided.deletions)
    assert decided.deletions > 500
    assert first.title.endswith(f"({decided.deletions} > 500)")


# --- agreement with the findings ---------------------------------------------------------------


def disagreements(findings: pl.DataFrame, people: pl.DataFrame) -> tuple[set, set]:
    said = set(
        findings.filter(pl.col("code").is_in(MATCH_CODES) & pl.col("ad_dn").is_not_null())
        .select("code", "ad_dn")
        .iter_rows()
    )
    forecast_says = set(
        people.explode("finding_codes")
        .drop_nulls("finding_codes")
        .select("finding_codes", "ad_dn")
        .iter_rows()
    )
    return said - forecast_says, forecast_says - said


def planned_snapshot(snapshot: Snapshot, change: ScopeChange) -> Snapshot:
    ad = planned_scope(snapshot.ad_users, change).drop("_was_in_scope")
    return replace(snapshot, ad_users=ad)


def test_forecast_and_findings_agree_on_the_demo(forecasted: ForecastResult) -> None:
    snapshot = read_snapshot(forecasted.run_dir)
    settings = forecasted.analysis.settings
    for change in (ScopeChange(), PLANNED_CHANGE):
        people = forecast(snapshot, settings, change).people
        findings = classify(planned_snapshot(snapshot, change), settings)
        assert disagreements(findings, people) == (set(), set()), change.sentence()
        assert people.filter(pl.col("finding_codes").list.len() > 0).height > 30


@pytest.mark.parametrize("seed", [1, 2])
def test_forecast_and_findings_agree_on_generated_estates(seed: int) -> None:
    snapshot = generate_scale_estate(4000, 3400, issue_rate=0.08, seed=seed)
    finance = EXCLUDED_OU.replace("OU=Disabled", "OU=Finance,OU=Users")
    for change in (ScopeChange(), ScopeChange((EXCLUDED_OU,), (finance,))):
        people = forecast(snapshot, Settings(), change).people
        findings = classify(planned_snapshot(snapshot, change), Settings())
        assert disagreements(findings, people) == (set(), set())
        assert set(people["outcome"]) >= {"unchanged", "create", "hard-match", "soft-match"}
        assert people.filter(pl.col("finding_codes").list.len() > 0).height > 200


# --- files, report, CLI ------------------------------------------------------------------------


def test_files_beside_the_findings(forecasted: ForecastResult, people) -> None:
    assert people.schema == pl.Schema(FORECAST_SCHEMA)
    assert list(people.columns[:8]) == [
        "ad_dn", "ad_object_guid", "outcome", "cloud_id", "predicted_upn", "error", "reason", "fix",
    ]  # fmt: skip
    csv = pl.read_csv(forecasted.run_dir / "forecast.csv", infer_schema=False)
    assert csv.height == people.height and csv.columns == people.columns
    assert set(forecasted.outputs) == {
        "forecast.parquet",
        "forecast.csv",
        "forecast.xlsx",
        "forecast.json",
    }
    manifest = json.loads((forecasted.run_dir / "manifest.json").read_text("utf-8"))
    assert manifest["forecast"]["change"] == PLANNED_CHANGE.as_json()


def test_the_reports_show_the_forecast_verdict_first(forecasted: ForecastResult) -> None:
    html = (forecasted.run_dir / "report.html").read_text("utf-8")
    section = html[html.index('<section id="forecast">') :].split("</section>", 1)[0]
    assert "verdict-no-go" in section and "Two in-scope AD users send the same anchor" in section
    assert section.index("NO-GO") < section.index("<table")
    assert "sven.aalto####@contoso.onmicrosoft.com" in section
    assert section.count("<svg") == 1
    pages = [p.extract_text() for p in pypdf.PdfReader(forecasted.run_dir / "report.pdf").pages]
    at = next(i for i, text in enumerate(pages) if "Forecast of the next sync: NO-GO" in text)
    assert at <= 2 and len(pages) < 40
    # re-analysing the run keeps the section: it is read back from the forecast files
    analyze(forecasted.run_dir, forecasted.analysis.settings)
    assert '<section id="forecast">' in (forecasted.run_dir / "report.html").read_text("utf-8")


def syncaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_forecast_and_its_one_line_errors(forecasted: ForecastResult, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(forecasted.run_dir, run)
    done = syncaudit("forecast", run, "--include-ou", CONTRACTORS_OU)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("NO-GO: ")
    assert f"change: {CONTRACTORS_OU} enters sync scope" in done.stdout
    assert "fix: " in done.stdout and "forecast.xlsx" in done.stdout
    for args, message in (
        (("--enable-sync",), "already syncs"),
        ((), "no such"),
    ):
        target = run if args else tmp_path / "missing"
        failed = syncaudit("forecast", target, *args)
        assert failed.returncode == 2
        errors = [line for line in failed.stderr.splitlines() if "error" in line]
        assert errors == [failed.stderr.strip().splitlines()[-1]] and message in errors[0]
        assert "Traceback" not in failed.stderr


def test_a_suspect_run_is_not_forecast(forecasted: ForecastResult) -> None:
    """The safety guard takes a source that shrank past max_drop_percent as not read
    completely: every outcome resting on an absence would be a guess."""
    snapshot = read_snapshot(forecasted.run_dir)
    drop = Drop("ad", "AD users", 5000, 3000, "r0", 10.0)
    with pytest.raises(ForecastError, match="every AD source read completely: corp: AD users fell"):
        forecast(guarded(snapshot, [drop]), Settings(), PLANNED_CHANGE)


def test_a_never_synced_tenant_needs_enable_sync(tmp_path: Path) -> None:
    snapshot = generate_scale_estate(50, 40, issue_rate=0.0, seed=4)
    tenant = replace(snapshot.tenant, dirsync_enabled=False)
    never = replace(
        snapshot,
        tenant=tenant,
        cloud_users=snapshot.cloud_users.with_columns(
            sync_enabled=pl.lit(None, pl.Boolean), on_prem_object_id=pl.lit(None, pl.String)
        ),
    )
    with pytest.raises(ForecastError, match="add --enable-sync"):
        forecast(never, Settings(), ScopeChange())
    people = forecast(never, Settings(), ScopeChange(enable_sync=True)).people
    # every cloud account holding its AD user's anchor is taken over at the first sync
    assert people.get_column("outcome").value_counts().sort("outcome").rows() == [
        ("create", 10),
        ("hard-match", 40),
    ]


def test_the_mail_leads_with_the_verdict(forecasted: ForecastResult) -> None:
    from audit.config import EmailSettings
    from audit.notify import compose

    report = forecasted.analysis.report
    assert report is not None
    mail = compose(
        report, forecasted.run_dir, EmailSettings(sender="a@b.example", to=("c@d.example",))
    )
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    for body in (html, text):
        assert "Forecast of the planned change: NO-GO" in body
        assert "Two in-scope AD users send the same anchor (4 people)" in body
