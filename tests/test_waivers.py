"""Waivers (audit/waivers.py): a waiver hides nothing, marks its findings (which then count
toward neither fail_on nor sync health), expires on its date, is listed when it matches
nothing; an invalid waivers file stops the analysis with one line naming the entry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook

from audit.cli import main
from audit.config import load_settings
from audit.errors import ConfigError
from audit.model import Severity
from audit.pipeline import analyze, save_run
from audit.waivers import load_waivers
from tests import factories as f

DAY = "2026-11-23T06:00:00+00:00"  # the snapshot's day


def estate(tmp_path: Path, taken_at: str = DAY) -> Path:
    """ada matched; zed cloud-only (cloud-orphan) and bob AD-only (unmatched-ad)."""
    snapshot = f.snapshot(
        [f.ad_user("ada"), f.ad_user("bob")],
        [f.cloud_user("ada"), f.cloud_user("zed")],
    )
    return save_run(tmp_path / "run", replace(snapshot, taken_at=taken_at), f.settings(), {})


def config_with(tmp_path: Path, waivers: str) -> Path:
    (tmp_path / "waivers.toml").write_text(waivers, encoding="utf-8")
    path = tmp_path / "syncaudit.toml"
    path.write_text('[run]\nwaivers = "waivers.toml"\n', encoding="utf-8")
    return path


ZED = """
[[waiver]]
code = "cloud-orphan"
cloud = "ZED@contoso.com"
reason = "Scanner account, cloud-only by design"
owner = "jane.doe@contoso.com"
expires = {expires}
"""
NOTHING = """
[[waiver]]
code = "cloud-orphan"
cloud = "nobody@contoso.com"
reason = "left over"
owner = "jane.doe@contoso.com"
expires = 2027-01-31
"""


def test_a_waiver_marks_its_finding_and_hides_nothing(tmp_path: Path) -> None:
    run = estate(tmp_path)
    before = analyze(run, f.settings())
    config = config_with(tmp_path, ZED.format(expires="2027-03-31") + NOTHING)
    result = analyze(run, load_settings(config))
    assert result.findings.height == before.findings.height  # nothing hidden
    zed = result.findings.filter(pl.col("cloud_upn") == "zed@contoso.com").row(0, named=True)
    assert (zed["code"], zed["waived"], zed["status"], zed["waiver_expires"]) == (
        "cloud-orphan",
        True,
        "waived",
        "2027-03-31",
    )
    assert zed["waiver_reason"] == (
        "Scanner account, cloud-only by design (owner jane.doe@contoso.com; waiver 1)"
    )
    others = result.findings.filter(
        pl.col("cloud_upn").is_null() | (pl.col("code") != "cloud-orphan")
    )
    assert not others["waived"].any()
    assert result.health == before.health  # a waiver neither raises nor lowers it
    unmatched = (
        "waiver 2 (cloud-orphan; cloud nobody@contoso.com; owner jane.doe@contoso.com) matches "
        "no finding: fixed, or a selector is wrong"
    )
    assert unmatched in result.warnings
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["analyzed"]["waivers"] == {
        "waived": 1,
        "expired": [],
        "unmatched": [
            "waiver 2 (cloud-orphan; cloud nobody@contoso.com; owner jane.doe@contoso.com)"
        ],
    }
    # every output still shows it, marked
    assert pl.read_csv(run / "findings.csv").filter(pl.col("status") == "waived").height == 1
    html = (run / "report.html").read_text(encoding="utf-8")
    assert '<span class="waived" title="Scanner account, cloud-only by design' in html
    sheet = next(
        ws for ws in load_workbook(run / "findings.xlsx").worksheets if ws.title != "Summary"
    )
    header = [c.value for c in sheet[1]]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    status = header.index("Status")
    assert [v[status] for v in values if v[status] == "waived"] == ["waived"]


BOB = """
[[waiver]]
code = "unmatched-ad"
ad = "bob@contoso.com"
reason = "Leaves next week"
owner = "hr-it@contoso.com"
expires = 2026-12-31
"""


def test_waived_findings_do_not_count_toward_fail_on(tmp_path: Path) -> None:
    """The two medium findings (zed's cloud-orphan, bob's unmatched-ad) waived: fail_on medium
    no longer fails; the info findings remain."""
    run = estate(tmp_path)
    before = analyze(run, f.settings(), fail_on=Severity.medium)
    assert before.failed and before.worst == Severity.medium
    config = config_with(tmp_path, ZED.format(expires="2027-03-31") + BOB)
    result = analyze(run, load_settings(config), fail_on=Severity.medium)
    assert not result.failed and result.worst == Severity.info
    assert sorted(result.findings.filter(pl.col("waived"))["code"]) == [
        "cloud-orphan",
        "unmatched-ad",
    ]


def test_a_waiver_expires_after_its_date(tmp_path: Path) -> None:
    """In force through its date (the snapshot's UTC day); the day after, its finding is open
    again and the waiver is listed."""
    config = config_with(tmp_path, ZED.format(expires="2026-11-23"))
    on_the_day = analyze(estate(tmp_path / "a"), load_settings(config))
    assert on_the_day.findings["waived"].sum() == 1
    after = analyze(estate(tmp_path / "b", "2026-11-24T00:00:00+00:00"), load_settings(config))
    assert after.findings["waived"].sum() == 0
    assert (
        "waiver 1 (cloud-orphan; cloud ZED@contoso.com; owner jane.doe@contoso.com) expired on "
        "2026-11-23: its 1 finding is open again"
    ) in after.warnings


def test_the_runs_stored_config_never_reads_a_waivers_file(tmp_path: Path) -> None:
    """A run directory is input: its manifest's config does not name local files to read."""
    config = config_with(tmp_path, ZED.format(expires="2027-03-31"))
    snapshot = replace(
        f.snapshot([f.ad_user("ada")], [f.cloud_user("ada"), f.cloud_user("zed")]), taken_at=DAY
    )
    run = save_run(tmp_path / "run", snapshot, load_settings(config), {})
    assert not analyze(run).findings["waived"].any()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[waiver]]\ncode = 'cloud-orphan'\n", "waiver 1 (cloud-orphan): reason is missing"),
        (
            "[[waiver]]\ncode = 'no-such-code'\nreason = 'r'\nowner = 'o'\nexpires = 2027-01-01\n",
            "waiver 1: unknown finding code 'no-such-code'",
        ),
        (
            ZED.format(expires="2027-01-01") + "\n[[waiver]]\ncode = 'cloud-orphan'\nreason = 'r'"
            "\nowner = 'o'\nexpires = '2027-01-01'\ncloud = 'x'\n",
            "waiver 2 (cloud-orphan): expires must be a date without quotes",
        ),
        (
            "[[waiver]]\ncode = 'cloud-orphan'\nreason = 'r'\nowner = 'o'\nexpires = 2027-01-01\n",
            "waiver 1 (cloud-orphan): give at least one of fingerprint, ad, cloud, attribute",
        ),
        (
            "[[waiver]]\ncode = 'cloud-orphan'\nreason = 'r'\nowner = 'o'\nexpires = 2027-01-01\n"
            "cloud = 'x'\nuntil = 2027-01-01\n",
            "waiver 1: unknown key 'until'",
        ),
        ("[[waiver]]\ncode = 'cloud-orphan'\nreason = ''\n", "waiver 1: reason must be"),
        ("waiver = 1\n", "waiver must be an array of tables"),
        ("[waivers]\n", "unknown table or key 'waivers'"),
        ("[[waiver]\n", "not valid TOML"),
    ],
)
def test_an_invalid_waivers_file_is_one_line_naming_the_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_waivers(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_analyze_with_an_invalid_waivers_file_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = estate(tmp_path)
    config = config_with(tmp_path, "[[waiver]]\ncode = 'cloud-orphan'\n")
    assert main(["analyze", str(run), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"syncaudit: error: {tmp_path / 'waivers.toml'}: waiver 1 (cloud-orphan): reason is "
        "missing: every waiver says why and who\n"
    )
    assert not (run / "findings.csv").exists()


def test_the_example_waivers_file_is_valid() -> None:
    waivers = load_waivers(Path(__file__).parents[1] / "config" / "waivers.example.toml")
    assert waivers and all(w.expires > date(2026, 1, 1) for w in waivers)
    assert datetime.now(UTC).year >= 2026
