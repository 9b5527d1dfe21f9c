"""The overlap policy (audit/rules/overlaps.py): one cause, one line, on crafted estates and on
the demo; and the cause key that groups findings sharing one fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from audit.classify import classify
from audit.model import Tenant
from audit.rules.overlaps import OVERLAPS, overlap_markdown
from tests.factories import ad_user, settings, snapshot
from tests.report_fixtures import demo_run
from tests.rules.helpers import dn

REPO = Path(__file__).resolve().parent.parent.parent


def test_a_local_upn_is_one_finding_about_its_suffix() -> None:
    """IdFix's topleveldomain error on a .local UPN and upn-suffix-unverified are one cause:
    one finding, upn-suffix-unverified, carrying the other in its evidence. A .local mail keeps
    its own invalid-attribute (another attribute, another fix)."""
    contoso = {"proxy_addresses": [], "primary_smtp": None}
    users = [
        ad_user("ana", upn="ana@cascade.local", mail="ana@contoso.com", **contoso),
        ad_user(
            "ben",
            upn="ben@cascade.local",
            mail="ben@cascade.local",
            proxy_addresses=["SMTP:ben@cascade.local"],
            primary_smtp="ben@cascade.local",
        ),
    ]
    findings = classify(snapshot(users, [], tenant_info=Tenant(known=False)), settings())
    got = {
        (r["code"], r["ad_dn"], r["attribute"], r["cause"])
        for r in findings.filter(
            pl.col("ad_dn").is_not_null() & (pl.col("code") != "unmatched-ad")
        ).iter_rows(named=True)
    }
    upn = {g for g in got if g[2] == "userPrincipalName"}
    assert upn == {
        ("upn-suffix-unverified", dn("ana"), "userPrincipalName", "upn-suffix:cascade.local"),
        ("upn-suffix-unverified", dn("ben"), "userPrincipalName", "upn-suffix:cascade.local"),
    }
    assert {g for g in got if g[2] != "userPrincipalName"} == {
        (
            "invalid-attribute",
            dn("ben"),
            "proxyAddresses",
            "invalid-attribute:proxyAddresses:tld:local",
        )
    }
    ana = findings.filter(
        (pl.col("code") == "upn-suffix-unverified") & (pl.col("ad_dn") == dn("ana"))
    )
    (also,) = json.loads(ana["evidence"][0])["also"]
    assert also["code"] == "invalid-attribute" and "top-level domain" in also["detail"]


def test_every_overlap_names_a_test_that_exists() -> None:
    for overlap in OVERLAPS:
        path, name = overlap.test.split("::")
        assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), overlap.test


def test_the_demo_holds_to_the_overlap_policy() -> None:
    findings = demo_run().findings
    key = pl.coalesce("ad_object_guid", "cloud_id")
    for overlap in OVERLAPS:
        strong = set(findings.filter(pl.col("code") == overlap.stronger).select(key).to_series())
        weak = findings.filter(pl.col("code") == overlap.weaker)
        if overlap.weaker == "invalid-attribute":
            weak = weak.filter(pl.col("attribute") == "userPrincipalName").filter(
                pl.col("evidence").str.json_path_match("$.kind") == "topleveldomain"
            )
        both = strong & set(weak.select(key).to_series())
        assert not both, (overlap.stronger, overlap.weaker, sorted(both)[:3])


def test_the_architecture_doc_shows_the_policy_from_the_code() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    begin = text.index("-->\n", text.index("<!-- overlap-policy:begin")) + 4
    end = text.index("<!-- overlap-policy:end -->")
    assert text[begin:end] == overlap_markdown()
