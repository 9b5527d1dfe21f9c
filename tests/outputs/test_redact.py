"""--redact: UPNs, names and DNs masked consistently in every format that leaves the team."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from audit.cli import main
from audit.errors import ConfigError
from audit.history import KEY_ENV, KEY_FILE, redaction_key
from audit.outputs.redact import Redactor, redact_findings
from tests.report_fixtures import demo_run

KEY = b"test-key"


def test_masks_are_deterministic_keyed_and_keep_structure() -> None:
    r = Redactor(KEY)
    assert r.email("Anne.Dubois@Contoso.com") == r.email("anne.dubois@contoso.com")
    assert r.email("anne.dubois@contoso.com").endswith("@contoso.com")
    assert r.email("anne.dubois@contoso.com").startswith("user-")
    assert r.email("anne.dubois@contoso.com") != r.email("anne.dupont@contoso.com")
    assert Redactor(b"other").email("anne@contoso.com") != r.email("anne@contoso.com")
    dn = "CN=Anne Dubois,OU=Staff,DC=corp,DC=contoso,DC=com"
    masked = r.dn(dn)
    assert masked == f"CN={r.name('Anne Dubois')},OU=Staff,DC=corp,DC=contoso,DC=com"
    escaped = "Smith\\, John"
    assert r.dn(f"CN={escaped},OU=Staff,DC=x") == f"CN={r.name(escaped)},OU=Staff,DC=x"
    assert re.fullmatch(r"name-[0-9a-f]{12}", r.name("Anne Dubois"))
    assert r.any(dn) == masked and r.any("a@b.c") == r.email("a@b.c")


def demo_people(findings: pl.DataFrame) -> set[str]:
    """The UPNs and CN values of the AD users the demo's findings name."""
    upns = set(findings["ad_upn"].drop_nulls()) | set(findings["cloud_upn"].drop_nulls())
    cns = {dn.split(",")[0][3:] for dn in findings["ad_dn"].drop_nulls()}
    return {v for v in upns | cns if len(v) >= 4}


def test_redacted_findings_name_nobody() -> None:
    demo = demo_run()
    redacted = redact_findings(demo.findings, Redactor(KEY), demo.snapshot)
    assert redacted.height == demo.findings.height
    people = demo_people(demo.findings)
    text_columns = ["ad_upn", "cloud_upn", "ad_dn", "detail", "evidence", "value", "proposed_value"]
    blob = "\n".join(
        redacted.select(
            pl.concat_str([pl.col(c).fill_null("") for c in text_columns], separator="\t")
        )
        .to_series()
        .to_list()
    )
    leaked = sorted(p for p in people if p in blob)
    assert not leaked, leaked[:5]
    # Fingerprints are keyed: a plain one hashes the unmasked value, so a reader could confirm
    # a guess offline. Keyed, they stay stable from one redacted report to the next.
    plain = demo.findings["fingerprint"].to_list()
    keyed = redacted["fingerprint"].to_list()
    assert keyed == [Redactor(KEY).fingerprint(f) for f in plain]
    assert not set(keyed) & set(plain)
    assert len(set(keyed)) == len(set(plain))
    assert redacted["cloud_id"].to_list() == demo.findings["cloud_id"].to_list()


def test_same_person_same_mask_across_columns() -> None:
    demo = demo_run()
    r = Redactor(KEY)
    redacted = redact_findings(demo.findings, r, demo.snapshot)
    for before, after in zip(
        demo.findings.iter_rows(named=True), redacted.iter_rows(named=True), strict=True
    ):
        if before["ad_upn"]:
            assert after["ad_upn"] == r.email(before["ad_upn"])
            if before["ad_upn"] in before["detail"]:
                assert r.email(before["ad_upn"]) in after["detail"]
        if before["ad_dn"]:
            assert after["ad_dn"] == r.dn(before["ad_dn"])
            if before["ad_dn"] in before["detail"]:
                assert r.dn(before["ad_dn"]) in after["detail"]


def test_key_from_env_else_a_private_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    first = redaction_key(tmp_path)
    assert redaction_key(tmp_path) == first  # reused: masks stable across runs
    mode = stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode)
    assert mode == 0o600
    monkeypatch.setenv(KEY_ENV, "from-env-" + "k" * 32)
    assert redaction_key(tmp_path) == b"from-env-" + b"k" * 32
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        redaction_key(tmp_path)


def test_analyze_redact_masks_html_pdf_xlsx_but_not_the_run_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    demo = demo_run()
    run = tmp_path / "runs" / "demo-redacted"
    shutil.copytree(demo.run_dir, run)
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    assert main(["analyze", str(run), "--redact", "--fail-on", "critical"]) == 1
    out = capsys.readouterr().out
    assert f"report: {run.resolve() / 'report.html'}" in out
    people = demo_people(demo.findings)
    html = (run / "report.html").read_text(encoding="utf-8")
    pdf_text = "\n".join(
        (p.extract_text() or "") for p in PdfReader(run / "report.pdf").pages
    ).replace("\u200b", "")
    pdf_text = " ".join(pdf_text.split())
    book = load_workbook(run / "findings.xlsx", read_only=True)
    xlsx_text = "\n".join(
        str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if v
    )
    for name, text in (("html", html), ("pdf", pdf_text), ("xlsx", xlsx_text)):
        leaked = sorted(p for p in people if p in text)
        assert not leaked, (name, leaked[:5])
    r = Redactor(b"k" * 32)
    some_upn = demo.findings["ad_upn"].drop_nulls()[0]
    assert r.email(some_upn) in html and r.email(some_upn) in xlsx_text
    # The admin team's working data stays unredacted.
    assert some_upn in (run / "findings.csv").read_text(encoding="utf-8-sig")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["analyzed"]["redacted"] is True


def estate_values(snapshot: Any) -> set[str]:
    """Every real name, address and DN of the estate, in the forms a report could show them:
    raw, JSON-escaped (evidence) and with DN escapes undone."""
    values: set[str] = set()
    ad, cloud = snapshot.ad_users, snapshot.cloud_users
    for frame, columns in (
        (ad, ("upn", "mail", "primary_smtp", "display_name", "dn")),
        (cloud, ("upn", "mail", "primary_smtp", "display_name", "on_prem_upn", "on_prem_dn")),
    ):
        for column in columns:
            values.update(v for v in frame[column].drop_nulls().to_list() if v)
        proxies = frame["proxy_addresses"].explode().drop_nulls().to_list()
        values.update(p.split(":", 1)[1] for p in proxies if ":" in p and "@" in p)
    full_names = ad.select(
        pl.concat_str([pl.col("given_name"), pl.col("surname")], separator=" ")
    ).to_series()
    values.update(v for v in full_names.drop_nulls().to_list() if v)
    for dn in [*ad["dn"].drop_nulls().to_list(), *cloud["on_prem_dn"].drop_nulls().to_list()]:
        rdn = re.split(r"(?<!\\),", dn, maxsplit=1)[0].split("=", 1)[-1]
        values.update({rdn, rdn.replace("\\,", ","), json.dumps(rdn)[1:-1]})
    # Short values match ordinary words; domains and OUs are kept by design.
    return {v for v in values if len(v.strip()) >= 5 and "@" not in v[:1]}


def test_every_redacted_output_names_nobody_of_the_estate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    demo = demo_run()
    run = tmp_path / "runs" / "redacted"
    shutil.copytree(demo.run_dir, run)
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    main(["analyze", str(run), "--redact"])
    outputs = {
        "html": (run / "report.html").read_text(encoding="utf-8"),
        "pdf": " ".join(
            "\n".join((p.extract_text() or "") for p in PdfReader(run / "report.pdf").pages)
            .replace("\u200b", "")
            .split()
        ),
        "xlsx": "\n".join(
            str(v)
            for ws in load_workbook(run / "findings.xlsx", read_only=True).worksheets
            for row in ws.iter_rows(values_only=True)
            for v in row
            if v is not None
        ),
    }
    people = estate_values(demo.snapshot)
    assert len(people) > 300
    for name, text in outputs.items():
        folded = text.casefold()
        leaked = sorted(p for p in people if p.casefold() in folded)
        assert not leaked, (name, leaked[:8])


def test_proposals_long_names_and_escaped_dns_are_masked() -> None:
    """The red-team cases: a blank displayName's proposal is the person's name, a too-long name
    is proposed cut short (so it is no longer the value searched for), and a DN with an escaped
    comma appears JSON-escaped in the evidence."""
    from audit.classify import classify
    from tests import factories as f

    long_name = "Bartholomew " + "Featherstonehaugh-" * 16 + "Cholmondeley"
    users = [
        f.ad_user("anne", display_name=None, given_name="Anne", surname="Dubois"),
        f.ad_user("bart", display_name=long_name),
        f.ad_user(
            "pat",
            dn="CN=O'Brien\\, Patrick,OU=Staff,DC=corp,DC=contoso,DC=com",
            display_name="Patrick O'Brien",
        ),
    ]
    snapshot = f.snapshot(users, [])
    findings = classify(snapshot, f.settings())
    redacted = redact_findings(findings, Redactor(KEY), snapshot)
    text = "\n".join(
        redacted.select(
            pl.concat_str(
                [pl.col(c).cast(pl.String).fill_null("") for c in redacted.columns], separator="\t"
            )
        )
        .to_series()
        .to_list()
    )
    for real in ("Anne Dubois", "Featherstonehaugh", "O'Brien", "Patrick"):
        assert real not in text, real


def test_a_planted_key_file_symlink_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    known = tmp_path / "known"
    known.write_text("a" * 64)
    (tmp_path / KEY_FILE).symlink_to(known)
    with pytest.raises(ConfigError, match="symbolic link"):
        redaction_key(tmp_path)
