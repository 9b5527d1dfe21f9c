"""Run history (audit/history.py): each analysis compared with the previous complete run beside
it by fingerprint (new, open and their first_seen; resolved), and `syncaudit diff` between any
two analyzed runs. Three weekly runs of a crafted estate, with a change between each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from audit.cli import main
from audit.history import Baseline, source_drops
from audit.model import UTC_DATETIME
from audit.pipeline import AnalyzeResult, analyze, save_run
from tests import factories as f

# (AD users, cloud users matched to them) each week: bob is matched in week 2; cyd arrives in
# AD in week 2 and dan in week 3, neither in the cloud.
WEEKS = {
    "w1": (["ada", "bob"], ["ada"]),
    "w2": (["ada", "bob", "cyd"], ["ada", "bob"]),
    "w3": (["ada", "bob", "cyd", "dan"], ["ada", "bob"]),
}
TAKEN = {"w1": "2026-11-02T06:00:00+00:00", "w2": "2026-11-09T06:00:00+00:00"}
TAKEN["w3"] = "2026-11-16T06:00:00+00:00"


def at(name: str) -> datetime:
    return datetime.fromisoformat(TAKEN[name]).astimezone(UTC)


def rows(result: AnalyzeResult) -> set[tuple[Any, ...]]:
    """(code, AD UPN, status, first_seen) of each finding; the three tenant-switch findings
    (no AD object) are there every week."""
    return set(result.findings.select("code", "ad_upn", "status", "first_seen").iter_rows())


def tenant_rows(status: str, first_seen: datetime) -> set[tuple[Any, ...]]:
    return {("tenant-matching-settings", None, status, first_seen)}


def test_three_weeks_give_new_resolved_persisting_and_first_seen(tmp_path: Path) -> None:
    w1 = save_run(tmp_path / "w1", _snapshot("w1"), f.settings(), {})
    first = analyze(w1, f.settings())
    assert rows(first) == {
        ("unmatched-ad", "bob@contoso.com", "new", at("w1")),
        *tenant_rows("new", at("w1")),
    }
    assert first.comparison is not None and first.comparison.previous is None
    assert first.comparison.counts == {"new": 4, "persisting": 0, "resolved": 0}

    second = analyze(save_run(tmp_path / "w2", _snapshot("w2"), f.settings(), {}), f.settings())
    assert rows(second) == {
        ("unmatched-ad", "cyd@contoso.com", "new", at("w2")),
        *tenant_rows("open", at("w1")),
    }
    assert second.comparison is not None
    assert second.comparison.counts == {"new": 1, "persisting": 3, "resolved": 1}
    assert second.comparison.resolved.select("code", "detail").row(0)[0] == "unmatched-ad"
    assert "bob" in second.comparison.resolved["detail"][0]

    third = analyze(save_run(tmp_path / "w3", _snapshot("w3"), f.settings(), {}), f.settings())
    assert rows(third) == {
        ("unmatched-ad", "cyd@contoso.com", "open", at("w2")),  # first seen kept from week 2
        ("unmatched-ad", "dan@contoso.com", "new", at("w3")),
        *tenant_rows("open", at("w1")),
    }
    manifest = json.loads((tmp_path / "w3" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["analyzed"]["since_previous"] == {
        "previous_run": "w2",
        "previous_taken_at": TAKEN["w2"],
        "new": 1,
        "persisting": 4,
        "resolved": 0,
    }
    # the findings files carry them too
    saved = pl.read_parquet(tmp_path / "w3" / "findings.parquet")
    assert sorted(saved["status"]) == ["new", "open", "open", "open", "open"]
    # and the reports say it: in week 2, one new (medium), one resolved, three still open
    html = (tmp_path / "w2" / "report.html").read_text(encoding="utf-8")
    assert 'data-since-run="w1"' in html and 'data-new="1"' in html
    assert "1 medium among them; 1 resolved and 3 still open since" in html
    pdf = PdfReader(tmp_path / "w2" / "report.pdf").pages[0].extract_text()
    assert "New since run w1" in pdf and "1 resolved · 3 still open" in pdf
    sheets = load_workbook(tmp_path / "w2" / "findings.xlsx").worksheets
    header = [c.value for c in next(ws for ws in sheets if ws.title != "Summary")[1]]
    assert header[-2:] == ["Status", "First seen"]  # a first run has neither: all new
    first_html = (tmp_path / "w1" / "report.html").read_text(encoding="utf-8")
    assert "New: first run" in first_html and "No earlier complete run" in first_html


def _snapshot(name: str, *, complete: bool = True) -> Any:
    ad, cloud = WEEKS[name]
    snapshot = f.snapshot(
        [f.ad_user(n) for n in ad],
        [f.cloud_user(n) for n in cloud],
        complete=None if complete else {"cloud": False},
    )
    return replace(snapshot, taken_at=TAKEN[name])


def test_an_incomplete_run_is_not_the_one_compared_with(tmp_path: Path) -> None:
    """Week 2's cloud read was cut short: week 3 is compared with week 1, so bob's finding is
    resolved and cyd's is new, whatever week 2 said."""
    analyze(save_run(tmp_path / "w1", _snapshot("w1"), f.settings(), {}), f.settings())
    analyze(
        save_run(tmp_path / "w2", _snapshot("w2", complete=False), f.settings(), {}),
        f.settings(),
    )
    third = analyze(save_run(tmp_path / "w3", _snapshot("w3"), f.settings(), {}), f.settings())
    assert third.comparison is not None and third.comparison.previous is not None
    assert third.comparison.previous.run_id == "w1"
    assert rows(third) == {
        ("unmatched-ad", "cyd@contoso.com", "new", at("w3")),
        ("unmatched-ad", "dan@contoso.com", "new", at("w3")),
        *tenant_rows("open", at("w1")),
    }
    assert third.comparison.counts == {"new": 2, "persisting": 3, "resolved": 1}


def test_reanalysing_an_old_run_compares_it_with_the_runs_before_it(tmp_path: Path) -> None:
    for name in ("w1", "w2"):
        analyze(save_run(tmp_path / name, _snapshot(name), f.settings(), {}), f.settings())
    again = analyze(tmp_path / "w1", f.settings())
    assert again.comparison is not None and again.comparison.previous is None
    assert {status for *_, status, _ in rows(again)} == {"new"}


def test_a_run_analyzed_before_history_gives_its_snapshot_time(tmp_path: Path) -> None:
    """Findings saved without first_seen (an older version) were first seen at that run."""
    w1 = save_run(tmp_path / "w1", _snapshot("w1"), f.settings(), {})
    analyze(w1, f.settings())
    path = w1 / "findings.parquet"
    pl.read_parquet(path).with_columns(first_seen=pl.lit(None, UTC_DATETIME)).write_parquet(path)
    second = analyze(save_run(tmp_path / "w2", _snapshot("w2"), f.settings(), {}), f.settings())
    assert tenant_rows("open", at("w1")) <= rows(second)


def test_diff_prints_new_and_resolved_between_any_two_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = {name: save_run(tmp_path / name, _snapshot(name), f.settings(), {}) for name in WEEKS}
    for run in runs.values():
        analyze(run, f.settings())
    capsys.readouterr()
    assert main(["diff", str(runs["w1"]), str(runs["w3"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"w1 ({TAKEN['w1']}) -> w3 ({TAKEN['w3']}): 2 new, 1 resolved, 3 persisting"
    )
    listed = [line.split()[:3] for line in lines[1:]]
    assert listed == [
        ["new", "medium", "unmatched-ad"],
        ["new", "medium", "unmatched-ad"],
        ["resolved", "medium", "unmatched-ad"],
    ]
    assert "cyd@contoso.com" in lines[1] + lines[2] and "dan@contoso.com" in lines[1] + lines[2]
    assert "bob@contoso.com" in lines[3]


def test_diff_of_a_run_not_analyzed_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w1 = save_run(tmp_path / "w1", _snapshot("w1"), f.settings(), {})
    analyze(w1, f.settings())
    w2 = save_run(tmp_path / "w2", _snapshot("w2"), f.settings(), {})
    capsys.readouterr()
    assert main(["diff", str(w1), str(w2)]) == 2
    err = capsys.readouterr().err
    assert err == f"syncaudit: error: {w2}: not analyzed yet (run syncaudit analyze {w2})\n"


# --- the safety guard ------------------------------------------------------------------------

STAFF = [f"u{i:02d}" for i in range(10)]


def _staff(taken_at: str, ad: list[str]) -> Any:
    """`ad` of the ten staff in AD; all ten matched in the cloud, and zed, cloud-only."""
    snapshot = f.snapshot(
        [f.ad_user(n) for n in ad], [f.cloud_user(n) for n in STAFF] + [f.cloud_user("zed")]
    )
    return replace(snapshot, taken_at=taken_at)


def test_a_30_percent_drop_in_ad_users_holds_back_what_rests_on_absence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Week 2's AD read came back with 7 of 10 users: the three missing users' cloud accounts
    are not reported as orphans, zed's orphan finding is not "resolved" (not checked), the
    reports and the summary lead with why, and week 3 is compared with week 1."""
    w1 = save_run(tmp_path / "w1", _staff(TAKEN["w1"], STAFF), f.settings(), {})
    assert {r[0] for r in rows(analyze(w1, f.settings()))} == {
        "cloud-orphan",
        "tenant-matching-settings",
    }
    w2 = save_run(tmp_path / "w2", _staff(TAKEN["w2"], STAFF[:7]), f.settings(), {})
    capsys.readouterr()
    assert main(["analyze", str(w2)]) == 0
    out = capsys.readouterr().out.splitlines()
    sentence = (
        "AD users fell from 10 to 7 (-30%) since run w1, more than max_drop_percent = 10: a read "
        "that came back short is not evidence that those objects are gone, so what rests on "
        "their absence is held back"
    )
    assert out[1] == f"  SUSPECT RUN: {sentence}"
    second = analyze(w2, f.settings())
    assert rows(second) == tenant_rows("open", at("w1"))  # no orphans: held back
    assert second.suspect == (sentence,)
    assert second.comparison is not None
    assert second.comparison.counts == {"new": 0, "persisting": 3, "resolved": 0}
    held = {h.code for h in second.held_back if h.status == "held back"}
    assert "cloud-orphan" in held
    assert any(sentence in h.sentence() for h in second.held_back if h.code == "cloud-orphan")
    manifest = json.loads((w2 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["analyzed"]["suspect"] == [sentence]
    html = (w2 / "report.html").read_text(encoding="utf-8")
    summary = html[html.index('id="summary"') :]
    assert summary.index('class="suspect"') < summary.index('class="headline"')
    assert "fell from 10 to 7 (-30%) since run w1" in html
    pdf = PdfReader(w2 / "report.pdf").pages[0].extract_text()
    assert pdf.index("Suspect run.") < pdf.index("Sync health")

    w3 = save_run(tmp_path / "w3", _staff(TAKEN["w3"], STAFF), f.settings(), {})
    third = analyze(w3, f.settings())
    assert third.suspect == ()
    assert third.comparison is not None and third.comparison.previous is not None
    assert third.comparison.previous.run_id == "w1"  # w2 was suspect
    assert ("cloud-orphan", None, "open", at("w1")) in rows(third)


@pytest.mark.parametrize(
    ("before", "now", "limit", "trips"),
    [(100, 90, 10, False), (100, 89, 10, True), (100, 100, 0, False), (100, 99, 0, True)],
)
def test_the_guard_trips_past_max_drop_percent_only(
    before: int, now: int, limit: float, trips: bool
) -> None:
    previous = Baseline("w1", TAKEN["w1"], pl.DataFrame(), {"ad_users": before})
    snapshot = f.snapshot([f.ad_user(f"n{i}") for i in range(now)])
    assert bool(source_drops(snapshot, previous, limit)) is trips


def test_an_accepted_drop_is_judged_whole_and_becomes_the_baseline(tmp_path: Path) -> None:
    """The shrink was real (three staff left sync scope): --accept-drop judges the run whole,
    says so, and the next run is compared with it, not suspect."""
    analyze(save_run(tmp_path / "w1", _staff(TAKEN["w1"], STAFF), f.settings(), {}), f.settings())
    w2 = save_run(tmp_path / "w2", _staff(TAKEN["w2"], STAFF[:7]), f.settings(), {})
    second = analyze(w2, f.settings(), accept_drop=True)
    assert second.suspect == ()
    assert ("cloud-orphan", None, "new", at("w2")) in rows(second)  # the three, reported
    assert second.report is not None
    assert second.report.notes[0].startswith("accepted (--accept-drop): AD users fell from 10")
    manifest = json.loads((w2 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["analyzed"]["suspect"] == []
    assert len(manifest["analyzed"]["accepted_drop"]) == 1
    w3 = save_run(tmp_path / "w3", _staff(TAKEN["w3"], STAFF[:7]), f.settings(), {})
    third = analyze(w3, f.settings())
    assert third.suspect == ()
    assert third.comparison is not None and third.comparison.previous is not None
    assert third.comparison.previous.run_id == "w2"
