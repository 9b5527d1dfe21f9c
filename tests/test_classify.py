"""classify holds back exactly what rests on a source that could not show it, and says so:
each rule declares its needs (RuleMeta.requires / cases / caveats), the run lists the rules
held back with the sources to blame."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from audit.classify import classify, coverage
from audit.model import Need
from audit.rules import all_rules
from tests.factories import (
    NOW,
    ad_user,
    b64_anchor,
    cloud_only_user,
    cloud_user,
    guid_for,
    settings,
    snapshot,
)

DN = "CN={},OU=Staff,DC=corp,DC=contoso,DC=com"


def held(**complete: bool | None) -> list[str]:
    snap = snapshot([], [], complete=complete)
    return [h.sentence() for h in coverage(all_rules(), snap.unmet_needs())]


def test_a_complete_snapshot_holds_nothing_back() -> None:
    assert held() == []


def test_an_incomplete_ad_side_holds_back_only_what_rests_on_an_ad_absence() -> None:
    assert held(ad=False) == [
        "cloud-orphan held back: needs every AD source read completely (ad: cut short (test))"
    ]


def test_an_incomplete_cloud_side() -> None:
    assert held(cloud=False) == [
        "anchor-held-by-deleted: reported without the cloud users read completely, so its "
        "findings may miss a blocker (cloud: cut short (test))",
        "soft-match-pending held back: needs the cloud users read completely "
        "(cloud: cut short (test))",
        "soft-match-blocked held back: needs the cloud users read completely "
        "(cloud: cut short (test))",
        "unmatched-ad held back: needs the cloud users read completely (cloud: cut short (test))",
        "hard-match-blocked partly held back (soft-match candidates only a set-anchor hard match "
        "can join): needs the cloud users read completely (cloud: cut short (test))",
    ]


def test_missing_optional_exports() -> None:
    assert held(deleted=None, roles=None, tenant=None) == [
        "anchor-held-by-deleted held back: needs the soft-deleted users (--deleted) "
        "(no soft-deleted users export (--deleted))",
        "soft-match-pending: reported without the soft-deleted users (--deleted) and the "
        "directory role assignments (--roles), so its findings may miss a blocker (no "
        "soft-deleted users export (--deleted); no role assignments (--roles))",
        "unmatched-ad: reported without the soft-deleted users (--deleted), so its findings "
        "may miss a blocker (no soft-deleted users export (--deleted))",
        "hard-match-blocked: reported without the directory role assignments (--roles), so its "
        "findings may miss a blocker (no role assignments (--roles))",
        "tenant-sync-stale held back: needs the tenant's organization (--tenant) "
        "(no organization export (--tenant))",
    ]


def test_every_declared_need_is_one_the_snapshot_can_report() -> None:
    snap = snapshot(
        [], [], complete=dict.fromkeys(("ad", "cloud", "deleted", "tenant", "roles"), None)
    )
    unmet = snap.unmet_needs()
    declared = {
        need
        for rule in all_rules()
        for need in (
            *rule.meta.requires,
            *rule.meta.caveats,
            *(n for case in rule.meta.cases for n in case.requires),
        )
    }
    assert declared <= set(unmet) | {Need.tenant_domains}


def _classic_case() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Megan's anchor is held by her soft-deleted old account; an orphaned synced account."""
    deleted = cloud_user("megan", id="old-megan", deleted_at=NOW - timedelta(days=12))
    orphan = cloud_user("ghost", immutable_id=b64_anchor(guid_for("nobody")))
    return [ad_user("megan")], [deleted, orphan]


def test_anchor_held_by_deleted_needs_the_deleted_users_not_a_complete_cloud() -> None:
    ad, cloud = _classic_case()
    found = classify(snapshot(ad, cloud, complete={"cloud": False}), settings())
    assert set(found.select("code", "ad_dn", "cloud_id").iter_rows()) >= {
        ("anchor-held-by-deleted", DN.format("megan"), "old-megan")
    }
    row = found.filter(pl.col("code") == "anchor-held-by-deleted").row(0, named=True)
    assert "look for a cloud-only account waiting for this person before restoring" in row["detail"]


def test_an_incomplete_ad_side_hides_the_orphan_but_not_the_deleted_holder() -> None:
    ad, cloud = _classic_case()
    codes = set(classify(snapshot(ad, cloud, complete={"ad": False}), settings())["code"])
    assert "cloud-orphan" not in codes
    assert "anchor-held-by-deleted" in codes
    codes = set(classify(snapshot(ad, cloud), settings())["code"])
    assert {"cloud-orphan", "anchor-held-by-deleted"} <= codes


def test_soft_match_pending_says_what_it_could_not_rule_out() -> None:
    alice = ad_user("alice")
    candidate = cloud_only_user("alice")
    found = classify(
        snapshot([alice], [candidate], complete={"deleted": None, "roles": None}), settings()
    )
    row = found.filter(pl.col("code") == "soft-match-pending").row(0, named=True)
    assert row["detail"].endswith(
        "(soft-deleted users were not supplied: a deleted holder of the anchor would pre-empt "
        "this; role assignments were not supplied: a directory role on the candidate would "
        "block it (Existing Admin Role Conflict))"
    )
