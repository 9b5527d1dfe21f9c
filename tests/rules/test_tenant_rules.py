"""Tenant family: provisioning-error, stale-sync-object, tenant-sync-stale and
tenant-matching-settings over crafted estates; plus the clean-estate check for all my rules."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl

from audit.classify import classify
from audit.config import EntraSettings, Settings
from audit.model import Feature
from audit.rules import drift, idfix, tenant
from tests.factories import (
    NOW,
    ad_user,
    cloud_only_user,
    cloud_user,
    settings,
    snapshot,
)
from tests.factories import tenant as tenant_info

RULES = tenant.RULES
NOT_SETTINGS = tuple(r for r in RULES if r.meta.code != "tenant-matching-settings")
SETTINGS_RULE = tuple(r for r in RULES if r.meta.code == "tenant-matching-settings")


def dn(name: str) -> str:
    return f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"


def found(frame: pl.DataFrame) -> set[tuple[object, ...]]:
    return set(
        frame.select(
            "code", "ad_dn", "attribute", "value", "proposed_value", "severity"
        ).iter_rows()
    )


def perror(prop: str, value: str, category: str = "PropertyConflict") -> dict[str, object]:
    return {
        "category": category,
        "occurred": NOW - timedelta(days=3),
        "property": prop,
        "value": value,
    }


# --- clean estate --------------------------------------------------------------------------


def test_clean_matched_estate_gives_only_the_three_matching_setting_findings() -> None:
    """All drift, tenant and IdFix rules over a clean matched estate report only the switches."""
    names = ["alice", "bob", "carol"]
    snap = snapshot([ad_user(n) for n in names], [cloud_user(n) for n in names])
    frame = classify(snap, settings(), rules=drift.RULES + tenant.RULES + idfix.RULES)
    assert found(frame) == {
        ("tenant-matching-settings", None, "blockSoftMatchEnabled", "unknown", None, "info"),
        (
            "tenant-matching-settings",
            None,
            "blockCloudObjectTakeoverThroughHardMatchEnabled",
            "unknown",
            None,
            "info",
        ),
        ("tenant-matching-settings", None, "softMatchOnUpnEnabled", "unknown", None, "info"),
    }


# --- provisioning-error --------------------------------------------------------------------


def test_each_provisioning_error_is_a_finding_naming_the_ad_owner_of_the_value() -> None:
    """Every error entry is one finding; the AD user owning the conflicting UPN/SMTP is named."""
    owner = ad_user("hank")
    ivy = ad_user("ivy", proxy_addresses=["SMTP:ivy@contoso.com", "smtp:sales@contoso.com"])
    twin = cloud_only_user(
        "hank-twin",
        upn="hank1234@contoso.onmicrosoft.com",
        provisioning_errors=[
            perror("UserPrincipalName", "Hank@Contoso.com"),
            perror("ProxyAddress", "SMTP:sales@contoso.com"),
        ],
    )
    frame = classify(snapshot([owner, ivy], [twin]), settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        ("provisioning-error", dn("hank"), "UserPrincipalName", "Hank@Contoso.com", None, "high"),
        ("provisioning-error", dn("ivy"), "ProxyAddress", "SMTP:sales@contoso.com", None, "high"),
    }
    row = frame.filter(pl.col("ad_dn") == dn("ivy")).row(0, named=True)
    assert row["cloud_upn"] == "hank1234@contoso.onmicrosoft.com"
    assert row["cloud_state"] == "active"
    ev = json.loads(row["evidence"])
    assert ev["category"] == "PropertyConflict" and ev["occurred"].startswith("2026-11-20")
    assert "belongs to AD user" in row["detail"]


def test_error_with_unowned_value_falls_back_to_the_anchor_holder_and_deleted_state() -> None:
    """With no AD owner of the value, the AD user holding the cloud user's anchor is named; a
    soft-deleted cloud user's error is reported with cloud_state deleted."""
    joe = ad_user("joe")
    cloud = [
        cloud_user(
            "joe",
            provisioning_errors=[perror("UserPrincipalName", "nobody@contoso.com")],
        ),
        cloud_only_user(
            "ghost",
            deleted_at=NOW - timedelta(days=1),
            provisioning_errors=[perror("ProxyAddress", "smtp:ghost@contoso.com")],
        ),
    ]
    frame = classify(snapshot([joe], cloud), settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        ("provisioning-error", dn("joe"), "UserPrincipalName", "nobody@contoso.com", None, "high"),
        ("provisioning-error", None, "ProxyAddress", "smtp:ghost@contoso.com", None, "high"),
    }
    states = dict(frame.select("attribute", "cloud_state").iter_rows())
    assert states == {"UserPrincipalName": "active", "ProxyAddress": "deleted"}


# --- stale-sync-object ---------------------------------------------------------------------


def test_synced_user_not_synced_for_longer_than_threshold_is_stale() -> None:
    """A synced user last synced 10 days before the tenant's last sync is stale (7-day limit);
    one synced 6 days before is not; a cloud-only user is never judged."""
    snap = snapshot(
        [ad_user("kim"), ad_user("lou")],
        [
            cloud_user("kim", last_sync=NOW - timedelta(days=10)),
            cloud_user("lou", last_sync=NOW - timedelta(days=6)),
            cloud_only_user("max"),
        ],
    )
    frame = classify(snap, settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        (
            "stale-sync-object",
            dn("kim"),
            "onPremisesLastSyncDateTime",
            "2026-11-13T06:00:00Z",
            None,
            "medium",
        )
    }
    assert "is in scope" in frame.item(0, "detail")


def test_stale_object_compares_with_snapshot_time_when_tenant_last_sync_is_unknown() -> None:
    """Without the tenant's last sync the snapshot time is the reference; thresholds apply."""
    info = tenant_info(last_dirsync=None, dirsync_enabled=None)
    snap = snapshot(
        [],
        [cloud_user("ned", last_sync=NOW - timedelta(days=3))],
        tenant_info=info,
    )
    assert classify(snap, settings(), rules=NOT_SETTINGS).height == 0
    frame = classify(snap, settings(stale_object_days=2), rules=NOT_SETTINGS)
    assert found(frame) == {
        (
            "stale-sync-object",
            None,
            "onPremisesLastSyncDateTime",
            "2026-11-20T06:00:00Z",
            None,
            "medium",
        )
    }
    assert json.loads(frame.item(0, "evidence"))["reference_is"] == "snapshot_time"


# --- tenant-sync-stale ---------------------------------------------------------------------


def test_tenant_sync_older_than_threshold_is_critical() -> None:
    """Sync on and last sync 5 hours ago (3-hour threshold) is one critical tenant finding."""
    snap = snapshot(tenant_info=tenant_info(last_dirsync=NOW - timedelta(hours=5)))
    frame = classify(snap, settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        (
            "tenant-sync-stale",
            None,
            "onPremisesLastSyncDateTime",
            "2026-11-23T01:00:00Z",
            None,
            "critical",
        )
    }
    assert frame.item(0, "cloud_state") == "none"
    assert json.loads(frame.item(0, "evidence"))["age_hours"] == 5.0


def test_tenant_sync_within_threshold_or_sync_off_is_not_stale() -> None:
    """2 hours is within the threshold; sync off or unknown means no finding."""
    recent = tenant_info(last_dirsync=NOW - timedelta(hours=2))
    off = tenant_info(dirsync_enabled=False, last_dirsync=NOW - timedelta(days=30))
    unknown = tenant_info(dirsync_enabled=None, last_dirsync=None)
    for info in (recent, off, unknown):
        assert classify(snapshot(tenant_info=info), settings(), rules=NOT_SETTINGS).height == 0


def test_sync_enabled_but_never_completed_is_stale() -> None:
    """Sync on with no last sync time at all is reported (value unknown)."""
    snap = snapshot(tenant_info=tenant_info(last_dirsync=None))
    frame = classify(snap, settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        ("tenant-sync-stale", None, "onPremisesLastSyncDateTime", None, None, "critical")
    }


# --- tenant-matching-settings --------------------------------------------------------------


def test_matching_switches_state_value_source_and_meaning() -> None:
    """Graph values win, config fills in unknown ones, and the meaning names the remediation
    consequence (hard-match takeover blocked -> set-anchor fails with InvalidHardMatch)."""
    info = tenant_info(features={"block_hard_match_takeover": True, "soft_match_on_upn": None})
    config = Settings(
        entra=EntraSettings(
            features={
                "soft_match_on_upn": Feature(value=False, source="config"),
                "block_hard_match_takeover": Feature(value=False, source="config"),
            }
        )
    )
    frame = classify(snapshot(tenant_info=info), config, rules=SETTINGS_RULE)
    assert found(frame) == {
        ("tenant-matching-settings", None, "blockSoftMatchEnabled", "unknown", None, "info"),
        (
            "tenant-matching-settings",
            None,
            "blockCloudObjectTakeoverThroughHardMatchEnabled",
            "true",
            None,
            "info",
        ),
        ("tenant-matching-settings", None, "softMatchOnUpnEnabled", "false", None, "info"),
    }
    sources = {
        row["attribute"]: json.loads(row["evidence"])["source"]
        for row in frame.iter_rows(named=True)
    }
    assert sources == {
        "blockSoftMatchEnabled": "unknown",
        "blockCloudObjectTakeoverThroughHardMatchEnabled": "graph",
        "softMatchOnUpnEnabled": "config",
    }
    hard = frame.filter(pl.col("attribute").str.starts_with("blockCloud")).item(0, "detail")
    assert "InvalidHardMatch" in hard
    upn = frame.filter(pl.col("attribute") == "softMatchOnUpnEnabled").item(0, "detail")
    assert "only the primary SMTP" in upn


def test_error_on_a_synced_user_is_filed_under_its_own_ad_user_not_the_other_owner() -> None:
    """A synced cloud user's error belongs to the AD user it is synced from; another AD owner
    of the conflicting value is only named in the detail."""
    marcus = ad_user("marcus", proxy_addresses=["SMTP:marcus@contoso.com", "smtp:info@contoso.com"])
    lynn = ad_user("lynn", proxy_addresses=["SMTP:lynn@contoso.com", "smtp:info@contoso.com"])
    cloud = [
        cloud_user("marcus", provisioning_errors=[perror("ProxyAddress", "smtp:info@contoso.com")]),
        cloud_user("lynn"),
    ]
    frame = classify(snapshot([lynn, marcus], cloud), settings(), rules=NOT_SETTINGS)
    assert found(frame) == {
        ("provisioning-error", dn("marcus"), "ProxyAddress", "smtp:info@contoso.com", None, "high"),
    }
    assert "also belongs to AD user " + dn("lynn") in frame.item(0, "detail")
