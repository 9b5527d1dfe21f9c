"""The report model: sync health, counts per code and family, top actions, trend history."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from audit.history import load_history
from audit.model import FINDINGS_SCHEMA, Severity, conform
from audit.outputs.html import render_html
from audit.outputs.logo import load_logo
from audit.outputs.model import (
    Health,
    build_report,
    compute_health,
    human_time,
)
from audit.outputs.redact import Redactor
from tests import factories as f
from tests.report_fixtures import demo_run, settings_with


def finding(code: str, severity: str, ad_name: str | None, **extra: object) -> dict[str, object]:
    return {
        "fingerprint": f"{code}-{ad_name}-{severity}",
        "code": code,
        "severity": severity,
        "family": "drift",
        "title": code,
        "ad_object_guid": f.guid_for(ad_name) if ad_name else None,
        "waived": False,
        "status": "new",
        **extra,
    }


def findings_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    return conform(pl.DataFrame(rows, strict=False), FINDINGS_SCHEMA)


def health_estate() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    ad = [
        f.ad_user("clean"),
        f.ad_user("info-only"),
        f.ad_user("medium"),
        f.ad_user("waived"),
        f.ad_user("unsynced"),  # no cloud twin: not matched
        f.ad_user("deleted-twin"),  # twin is soft-deleted: not matched to an ACTIVE user
        f.ad_user("disabled", enabled=False),  # not in the denominator
        f.ad_user("out", in_scope=False),  # not in the denominator
    ]
    cloud = [
        f.cloud_user("clean"),
        f.cloud_user("info-only"),
        f.cloud_user("medium"),
        f.cloud_user("waived"),
        f.cloud_user("deleted-twin", deleted_at=f.NOW),
        f.cloud_user("disabled"),
        f.cloud_user("out"),
    ]
    return ad, cloud


def test_health_counts_cleanly_matched_in_scope_enabled_users() -> None:
    ad, cloud = health_estate()
    snapshot = f.snapshot(ad, cloud)
    findings = findings_frame(
        [
            finding("consistency-guid-differs", "info", "info-only"),
            finding("soft-match-pending", "low", "info-only"),
            finding("upn-drift", "medium", "medium"),
            finding("enabled-drift", "high", "waived", waived=True),
            finding("tenant-sync-stale", "critical", None),  # names nobody
        ]
    )
    health = compute_health(snapshot, findings)
    assert health == Health(clean=3, total=6)  # clean, info-only, waived of 6
    assert health.percent == 50.0


def test_health_of_an_empty_estate_is_unknown_not_zero() -> None:
    health = compute_health(f.snapshot([], []), findings_frame([]))
    assert health == Health(0, 0)
    assert health.percent is None


def test_demo_model_counts_equal_the_findings() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert model.total == demo.findings.height
    expected = dict(demo.findings.group_by("code").len().iter_rows())
    assert {c.code: c.count for c in model.codes} == expected
    for code in model.codes:
        assert code.rows.height == code.count
        assert set(code.rows["code"]) == {code.code}
        assert code.what and code.fix
    by_severity = dict(demo.findings.group_by("severity").len().iter_rows())
    assert {s: n for s, n in model.counts_by_severity.items() if n} == by_severity
    # Families hold every code once; codes are listed most severe first.
    assert sorted(c.code for fam in model.families for c in fam.codes) == sorted(expected)
    ranks = [Severity[c.severity].value for c in model.codes]
    assert ranks == sorted(ranks, reverse=True)
    # Top actions: the most severe codes, numbered from 1, never info.
    assert model.top_actions[0].code == "tenant-sync-stale"
    assert [a.rank for a in model.top_actions] == list(range(1, len(model.top_actions) + 1))
    assert all(a.severity != "info" for a in model.top_actions)
    assert 0 < model.health.clean <= model.health.total
    assert model.health.total == model.estate["ad_users_in_scope_enabled"]


def test_code_sections_carry_rule_metadata_and_actions() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    held = next(c for c in model.codes if c.code == "anchor-held-by-deleted")
    assert {"purge-deleted-holder", "restore-deleted-holder"} <= set(held.actions)
    assert held.what.startswith("No active cloud user holds")
    assert held.why  # the rest of the explanation
    assert held.references
    drift = next(c for c in model.codes if c.code == "enabled-drift")
    assert drift.counts_by_severity == {"high": 2, "low": 2}
    assert drift.severity == "high"


def write_run(
    parent: Path, name: str, taken_at: str, counts: dict[str, int], health: float
) -> None:
    run = parent / name
    run.mkdir(parents=True)
    manifest = {
        "format_version": 1,
        "run_id": name,
        "taken_at": taken_at,
        "analyzed": {
            "at": taken_at,
            "counts_by_severity": counts,
            "health": {"clean": 1, "total": 2, "percent": health},
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_history_reads_sibling_runs_before_this_one(tmp_path: Path) -> None:
    write_run(tmp_path, "w1", "2026-11-09T06:00:00+00:00", {"high": 5, "low": 1}, 90.0)
    write_run(tmp_path, "w2", "2026-11-16T06:00:00+00:00", {"high": 3}, 95.5)
    write_run(tmp_path, "w9", "2026-12-30T06:00:00+00:00", {"high": 1}, 99.0)  # later: skipped
    write_run(tmp_path, ".w3.abc.partial", "2026-11-17T06:00:00+00:00", {"high": 1}, 1.0)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "not-analyzed").mkdir()
    (tmp_path / "not-analyzed" / "manifest.json").write_text('{"run_id": "x"}')
    current = tmp_path / "w4"
    current.mkdir()
    points = load_history(current, "2026-11-23T06:00:00+00:00")
    assert [p.run_id for p in points] == ["w1", "w2"]
    assert points[0].counts_by_severity["high"] == 5
    assert points[0].total == 6
    assert points[1].health_percent == 95.5

    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="w4", history=points)
    assert [p.run_id for p in model.trend] == ["w1", "w2", "w4"]
    assert model.trend[-1].total == demo.findings.height
    assert model.trend[-1].health_percent == model.health.percent


def test_no_history_no_trend() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert model.trend == ()
    # The demo's own run directory has no analyzed siblings.
    assert load_history(demo.run_dir, demo.snapshot.taken_at) == []


def test_analyze_records_health_and_render_timings_in_the_manifest() -> None:
    manifest = json.loads((demo_run().run_dir / "manifest.json").read_text())
    analyzed = manifest["analyzed"]
    assert analyzed["health"]["total"] > 0
    assert analyzed["redacted"] is False
    assert set(analyzed["render_timings"]) == {
        "report_model_s",
        "render_html_s",
        "render_pdf_s",
        "render_xlsx_s",
    }


def test_config_supplies_company_title_and_logo(tmp_path: Path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    settings = settings_with(company="Fabrikam", title="Quarterly sync audit", logo=str(logo))
    snapshot = f.snapshot([f.ad_user("alice")], [f.cloud_user("alice")])
    model = build_report(findings_frame([]), snapshot, settings, run_id="r1")
    assert (model.company, model.title) == ("Fabrikam", "Quarterly sync audit")
    assert model.logo_data_uri and model.logo_data_uri.startswith("data:image/svg+xml;base64,")
    assert model.headline.startswith("No problems found")
    assert model.health == Health(1, 1)


def test_a_missing_or_unsupported_logo_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    assert load_logo("", None) == (None, None)
    uri, warning = load_logo(str(tmp_path / "nope.png"), None)
    assert uri is None and warning and "nope.png" in warning
    (tmp_path / "logo.bmp").write_bytes(b"BM")
    uri, warning = load_logo("logo.bmp", tmp_path)
    assert uri is None and warning and "PNG" in warning


def test_human_time() -> None:
    assert human_time("2026-11-23T06:00:00+00:00") == "23 November 2026, 06:00 UTC"
    assert human_time("garbage") == "garbage"


def test_every_code_has_a_plain_english_action() -> None:
    """The sentence lives on the rule's metadata, beside its title and fix (one catalogue)."""
    from audit.rules import all_rules

    for rule in all_rules():
        action = rule.meta.action
        assert action and action[0].isupper() and action.endswith("."), rule.meta.code


def test_a_logo_is_checked_by_content_and_never_followed_through_a_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "logo.png").symlink_to(secret)
    uri, warning = load_logo("logo.png", tmp_path)
    assert uri is None and warning and "symbolic link" in warning
    (tmp_path / "fake.png").write_text("root:x:0:0\n")  # the name says PNG, the bytes do not
    uri, warning = load_logo("fake.png", tmp_path)
    assert uri is None and warning and "by its content" in warning
    (tmp_path / "real.bin").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    uri, _ = load_logo("real.bin", tmp_path)
    assert uri is not None and uri.startswith("data:image/png;base64,")


def test_a_malformed_sibling_manifest_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from audit.history import load_history

    for name, manifest in (
        (
            "bad-counts",
            {
                "taken_at": "2026-11-01T00:00:00Z",
                "analyzed": {"counts_by_severity": {"high": "many"}},
            },
        ),
        ("deep", None),
    ):
        (tmp_path / name).mkdir()
        text = json.dumps(manifest) if manifest else "[" * 100_000 + "]" * 100_000
        (tmp_path / name / "manifest.json").write_text(text)
    (tmp_path / "current").mkdir()
    warnings: list[str] = []
    assert load_history(tmp_path / "current", None, warnings=warnings) == []
    assert sorted(w.split(":")[0] for w in warnings) == [
        "earlier run bad-counts left out of the trend",
        "earlier run deep left out of the trend",
    ]


# --- reports that say only what is true -------------------------------------------------------


def test_health_is_coloured_by_value_and_never_green_beside_a_critical_finding() -> None:
    from dataclasses import replace as dc_replace

    from audit.config import Thresholds
    from audit.outputs.model import health_status

    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert model.health.percent == 97.6
    assert (model.health_status, model.health_caveat) == (
        "bad",
        "but critical: Directory synchronization has stopped",
    )
    settings = dc_replace(
        demo.settings, thresholds=Thresholds(health_good_percent=95, health_warn_percent=80)
    )
    calm: list[str] = []
    assert health_status(Health(clean=96, total=100), calm, settings) == ("good", "")
    assert health_status(Health(clean=90, total=100), calm, settings) == ("warn", "")
    assert health_status(Health(clean=50, total=100), calm, settings) == ("bad", "")
    assert health_status(Health(clean=0, total=0), calm, settings) == ("unknown", "")
    assert health_status(Health(clean=99, total=100), ["Sync stopped"], settings) == (
        "bad",
        "but critical: Sync stopped",
    )
    html = render_html(model)
    assert 'class="card health bad" data-health="bad"' in html
    assert "but critical: Directory synchronization has stopped" in html


def test_headline_plurals_and_no_housekeeping_when_nobody_is_clean() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert (
        model.headline == "1 critical and 48 high findings need action before the next sync cycle."
    )
    one = model.findings.filter(pl.col("severity") == "critical")
    single = build_report(one, demo.snapshot, demo.settings, run_id="one")
    assert single.headline == "1 critical finding needs action before the next sync cycle."
    mediums = model.findings.filter(pl.col("severity") == "medium")
    nobody = build_report(
        mediums, demo.snapshot, demo.settings, run_id="m", health=Health(clean=0, total=10)
    )
    assert "housekeeping" not in nobody.headline and "none of the" in nobody.headline


def test_critical_first_in_sections_and_top_actions() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert model.families[0].family == "tenant"  # the critical finding's family
    assert model.top_actions[0].severity == "critical"
    assert model.codes[0].severity == "critical"


def test_fix_labels_say_what_this_runs_script_does() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    labels = {c.code: c.fix_label for c in model.codes}
    assert labels["enabled-drift"] == "block-sign-in \u00d72, manual \u00d72"
    assert labels["cloud-orphan"] == "clear-anchor \u00d71, manual \u00d75"
    assert labels["anchor-held-by-deleted"] == (
        "purge-deleted-holder \u00d71, restore-deleted-holder \u00d72"
    )
    assert labels["unmatched-ad"] == "no fix needed"
    # the same counts as the script the run writes
    script = (demo.run_dir / "remediation.ps1").read_text(encoding="ascii")
    assert "#   2 x block-sign-in:" in script and "(enabled-drift x2)" in script
    html = render_html(model)
    row = html[html.index('<tr data-code="enabled-drift"') :].split("</tr>", 1)[0]
    assert "block-sign-in \u00d72, manual \u00d72" in row and "2 high, 2 low" in row


def test_per_code_counts_show_their_severity_split() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    split = {c.code: c.severity_split for c in model.codes}
    assert split["unmatched-ad"] == "1 medium, 5 info"
    assert split["tenant-sync-stale"] == ""  # one severity: nothing to split


def test_the_report_summary_of_the_plan_equals_the_plan() -> None:
    from audit.remediation.plan import (
        PlanSummary,
        options_from_settings,
        plan_findings,
        summarize_findings,
    )

    demo = demo_run()
    options = options_from_settings(demo.settings, demo.snapshot.tenant)
    causes = dict(demo.findings.select("fingerprint", "cause").iter_rows())
    assert summarize_findings(demo.findings, options) == PlanSummary.of(
        plan_findings(demo.findings, options), causes
    )


def test_many_users_one_cause_is_one_line_with_its_count() -> None:
    """The demo's Cascade office: 14 users with cascade.local UPNs. Each has exactly one
    finding about its UPN, and the reports list the cause once, with the count."""
    demo = demo_run()
    cascade = demo.findings.filter(pl.col("ad_dn").str.contains("OU=Cascade,"))
    assert cascade.height == 14
    assert set(cascade["code"]) == {"upn-suffix-unverified"}
    assert set(cascade["cause"]) == {"upn-suffix:cascade.local"}
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    (line,) = [c for c in model.causes if c.cause == "upn-suffix:cascade.local"]
    assert (line.title, line.action_text, line.count, line.findings) == (
        "cascade.local is not a routable domain, so it can never be verified",
        "Add a routable UPN suffix and change 14 users' UPNs.",
        14,
        14,
    )
    assert [c.rank for c in model.causes] == list(range(1, len(model.causes) + 1))
    html = render_html(model)
    assert html.count('data-cause="upn-suffix:cascade.local"') == 1
    csv = (demo.run_dir / "findings.csv").read_text(encoding="utf-8-sig")
    assert "upn-suffix:cascade.local" in csv and ",cause," in csv.splitlines()[0] + ","


def test_an_estate_where_most_users_share_a_local_suffix_leads_with_that_cause() -> None:
    from audit.classify import classify
    from audit.model import Tenant

    users = [
        f.ad_user(f"user{i:02}", upn=f"user{i:02}@corp.local", proxy_addresses=[], mail=None)
        for i in range(20)
    ]
    snapshot = f.snapshot(users, [], tenant_info=Tenant(known=False))
    findings = classify(snapshot, f.settings())
    per_user = findings.filter(pl.col("attribute") == "userPrincipalName").group_by("ad_dn").len()
    assert per_user["len"].to_list() == [1] * 20  # one finding about the suffix each
    model = build_report(findings, snapshot, f.settings(), run_id="local")
    suffix = [a for a in model.top_actions if a.cause == "upn-suffix:corp.local"]
    assert [(a.count, a.action_text) for a in suffix] == [
        (20, "Add a routable UPN suffix and change 20 users' UPNs.")
    ]


def test_sources_read_are_listed_from_the_run_and_their_text_withheld_when_redacted() -> None:
    demo = demo_run()
    model = build_report(demo.findings, demo.snapshot, demo.settings, run_id="demo")
    assert [(s.name, s.kind, s.rows, s.complete) for s in model.sources] == [
        (r.name, r.kind, r.rows, r.complete) for r in demo.snapshot.sources
    ]
    (ad,) = [s for s in model.sources if s.kind == "ad"]
    (report,) = [r for r in demo.snapshot.sources if r.kind == "ad"]
    assert ad.excluded == ", ".join(f"{k} {n:,}" for k, n in sorted(report.excluded.items()))
    assert ad.remarks == (*report.warnings, *report.notes)
    html = render_html(model)
    assert html.count('<tr data-source="') == len(demo.snapshot.sources)
    redactor = Redactor(b"k" * 32)
    masked = build_report(
        demo.findings, demo.snapshot, demo.settings, run_id="demo", redactor=redactor
    )
    assert {s.remarks for s in masked.sources if s.remarks} <= {
        ("withheld in a redacted report (manifest.json has them)",)
    }
    assert [s.rows for s in masked.sources] == [s.rows for s in model.sources]
