"""Matching family: what Entra does with each in-scope AD user at its next export."""

from __future__ import annotations

from datetime import timedelta

from audit.model import Action, Tenant
from tests.factories import (
    NOW,
    ad_user,
    b64_anchor,
    cloud_id_for,
    cloud_only_user,
    cloud_user,
    guid_for,
    snapshot,
    tenant,
)
from tests.rules.helpers import dn, evidence, keys, one, run

GA = "Global Administrator"


def local_user(name: str, **overrides: object) -> dict[str, object]:
    """An AD user whose UPN suffix is the unroutable corp.local, mailbox on contoso.com."""
    return ad_user(
        name,
        upn=f"{name}@corp.local",
        mail=f"{name}@contoso.com",
        primary_smtp=f"{name}@contoso.com",
        proxy_addresses=[f"SMTP:{name}@contoso.com"],
        **overrides,
    )


def test_clean_matched_estate_has_no_findings() -> None:
    """Matched pairs, complete sources: no matching findings."""
    snap = snapshot([ad_user("alice"), ad_user("bob")], [cloud_user("alice"), cloud_user("bob")])
    assert keys(run(snap)) == set()


def test_soft_match_pending_on_primary_smtp() -> None:
    """An unmatched AD user and a cloud-only user with its primary SMTP: soft-match-pending."""
    findings = run(snapshot([ad_user("alice")], [cloud_only_user("alice")]))
    assert keys(findings) == {
        (
            "soft-match-pending",
            dn("alice"),
            cloud_id_for("alice"),
            "primarySmtp",
            "alice@contoso.com",
        )
    }
    assert one(findings, "soft-match-pending")["remediation"] is None


def test_soft_match_on_upn_when_switch_unknown_assumes_on() -> None:
    """Only the UPN agrees and softMatchOnUpnEnabled is unknown: pending, evidence says assumed."""
    cloud = cloud_only_user(
        "alice",
        mail="a.smith@contoso.com",
        primary_smtp="a.smith@contoso.com",
        proxy_addresses=["SMTP:a.smith@contoso.com"],
    )
    findings = run(snapshot([ad_user("alice")], [cloud]))
    assert keys(findings) == {
        (
            "soft-match-pending",
            dn("alice"),
            cloud_id_for("alice"),
            "userPrincipalName",
            "alice@contoso.com",
        )
    }
    assert evidence(one(findings, "soft-match-pending"))["soft_match_on_upn"].startswith(
        "assumed on"
    )


def test_no_upn_soft_match_when_switch_off() -> None:
    """softMatchOnUpnEnabled off: the AD user is unmatched and its UPN collides with the
    cloud user."""
    cloud = cloud_only_user(
        "alice",
        mail="a.smith@contoso.com",
        primary_smtp="a.smith@contoso.com",
        proxy_addresses=["SMTP:a.smith@contoso.com"],
    )
    snap = snapshot(
        [ad_user("alice")], [cloud], tenant_info=tenant(features={"soft_match_on_upn": False})
    )
    assert keys(run(snap)) == {
        ("unmatched-ad", dn("alice"), None, None, None),
        (
            "attribute-conflict-cloud",
            dn("alice"),
            cloud_id_for("alice"),
            "mail,proxyAddresses,userPrincipalName",
            "alice@contoso.com",
        ),
    }


def test_local_upn_soft_matches_on_smtp() -> None:
    """A .local UPN cannot match, but the primary SMTP soft-matches the cloud-only user."""
    findings = run(snapshot([local_user("ivan")], [cloud_only_user("ivan")]))
    assert keys(findings) == {
        ("soft-match-pending", dn("ivan"), cloud_id_for("ivan"), "primarySmtp", "ivan@contoso.com")
    }


def test_local_upn_unmatched_names_predicted_cloud_upn() -> None:
    """A .local user with no candidate is unmatched-ad; the onmicrosoft UPN it will get is named."""
    findings = run(snapshot([local_user("ivan", mail_nickname="ivan.k")], []))
    assert keys(findings) == {("unmatched-ad", dn("ivan"), None, None, None)}
    row = one(findings, "unmatched-ad")
    assert "ivan.k@contoso.onmicrosoft.com" in row["detail"]
    assert evidence(row)["upn_suffix_verified"] is False
    assert row["severity"] == "medium"  # created 400 days ago, sync on


def test_unmatched_ad_severity() -> None:
    """Info inside the grace period or with sync off; disabled users are not reported."""
    fresh = ad_user("new", when_created=NOW - timedelta(hours=5))
    disabled = ad_user("gone", enabled=False)
    findings = run(snapshot([fresh, disabled, ad_user("old")], []))
    assert keys(findings) == {
        ("unmatched-ad", dn("new"), None, None, None),
        ("unmatched-ad", dn("old"), None, None, None),
    }
    sev = {r["ad_dn"]: r["severity"] for r in findings.to_dicts()}
    assert sev == {dn("new"): "info", dn("old"): "medium"}
    off = run(snapshot([ad_user("old")], [], tenant_info=tenant(dirsync_enabled=False)))
    assert one(off, "unmatched-ad")["severity"] == "info"


def test_incomplete_cloud_suppresses_absence_findings() -> None:
    """Without a complete cloud read there is no unmatched-ad or soft-match claim."""
    snap = snapshot(
        [ad_user("alice"), ad_user("bob")], [cloud_only_user("bob")], complete={"cloud": False}
    )
    assert keys(run(snap)) == set()


def test_soft_match_blocked_admin_role() -> None:
    """A candidate with an admin role is never soft-matched: blocked, roles detour."""
    findings = run(snapshot([ad_user("alice")], [cloud_only_user("alice", admin_roles=[GA])]))
    assert keys(findings) == {
        (
            "soft-match-blocked",
            dn("alice"),
            cloud_id_for("alice"),
            "primarySmtp",
            "alice@contoso.com",
        )
    }
    row = one(findings, "soft-match-blocked")
    assert row["remediation"] == Action.roles_detour
    assert evidence(row)["blockers"] == ["admin-role"]


def test_soft_match_blocked_by_tenant_needs_hard_match() -> None:
    """blockSoftMatchEnabled: blocked, the fix is setting the anchor (a hard match)."""
    snap = snapshot(
        [ad_user("alice")],
        [cloud_only_user("alice")],
        tenant_info=tenant(features={"block_soft_match": True}),
    )
    findings = run(snap)
    assert keys(findings) == {
        (
            "soft-match-blocked",
            dn("alice"),
            cloud_id_for("alice"),
            "primarySmtp",
            "alice@contoso.com",
        )
    }
    assert one(findings, "soft-match-blocked")["remediation"] == Action.set_anchor


def test_soft_match_blocked_by_group_owning_address() -> None:
    """A group owning the AD user's primary SMTP: ObjectTypeMismatch."""
    group = {
        "id": "grp-1",
        "object_type": "group",
        "display_name": "Sales",
        "mail": "alice@contoso.com",
        "proxy_addresses": ["SMTP:alice@contoso.com"],
    }
    findings = run(snapshot([ad_user("alice")], [], objects=[group]))
    assert keys(findings) == {
        ("soft-match-blocked", dn("alice"), "grp-1", "primarySmtp", "alice@contoso.com")
    }
    row = one(findings, "soft-match-blocked")
    assert "ObjectTypeMismatch" in row["detail"]
    assert row["remediation"] == Action.manual


def test_soft_match_blocked_candidate_synced_to_other_ad_user() -> None:
    """A candidate that holds another user's immutableId: InvalidSoftMatch, manual fix."""
    other = cloud_user("alice", immutable_id=b64_anchor(guid_for("someone-else")))
    findings = run(snapshot([ad_user("alice")], [other]))
    assert (
        "soft-match-blocked",
        dn("alice"),
        cloud_id_for("alice"),
        "primarySmtp",
        "alice@contoso.com",
    ) in keys(findings)
    row = one(findings, "soft-match-blocked")
    assert evidence(row)["blockers"] == ["holds-other-immutable-id"]
    assert row["remediation"] == Action.manual


def test_hard_match_blocked_by_on_prem_object_id() -> None:
    """Anchor held by a cloud-only user with onPremisesObjectIdentifier set: the takeover sync
    needs is refused by the 2026 hardening; recovery clears the attribute."""
    target = cloud_user(
        "alice", sync_enabled=None, on_prem_object_id="8c4ac332-975f-4717-ad7b-ba4a4e968fff"
    )
    findings = run(snapshot([ad_user("alice")], [target]))
    assert keys(findings) == {
        ("hard-match-blocked", dn("alice"), cloud_id_for("alice"), None, None)
    }
    row = one(findings, "hard-match-blocked")
    assert row["remediation"] == Action.clear_onprem_object_id
    assert "onPremisesObjectIdentifier" in row["detail"] and "beta/users/" in row["detail"]
    assert evidence(row)["case"] == "sync-takeover"


def test_hard_match_blocked_by_eligible_role() -> None:
    """A PIM-eligible privileged role on the takeover target blocks the hard match too."""
    target = cloud_user("alice", sync_enabled=None, eligible_roles=[GA])
    findings = run(snapshot([ad_user("alice")], [target]))
    assert keys(findings) == {
        ("hard-match-blocked", dn("alice"), cloud_id_for("alice"), None, None)
    }
    assert one(findings, "hard-match-blocked")["remediation"] == Action.roles_detour


def test_hard_match_blocked_by_takeover_switch() -> None:
    """blockCloudObjectTakeoverThroughHardMatchEnabled on: the takeover is InvalidHardMatch."""
    snap = snapshot(
        [ad_user("alice")],
        [cloud_user("alice", sync_enabled=None)],
        tenant_info=tenant(features={"block_hard_match_takeover": True}),
    )
    findings = run(snap)
    assert keys(findings) == {
        ("hard-match-blocked", dn("alice"), cloud_id_for("alice"), None, None)
    }
    assert "InvalidHardMatch" in one(findings, "hard-match-blocked")["detail"]


def test_first_time_hard_match_of_plain_cloud_user_is_fine() -> None:
    """A never-synced, non-privileged cloud-only holder is taken over without a finding."""
    assert (
        keys(run(snapshot([ad_user("alice")], [cloud_user("alice", sync_enabled=None)]))) == set()
    )


def test_hard_match_blocked_for_remediation_target() -> None:
    """Tenant blocks soft match and the candidate is privileged: the soft match is blocked and
    the hard match the remediation would use is refused as well."""
    snap = snapshot(
        [ad_user("alice")],
        [cloud_only_user("alice", eligible_roles=[GA])],
        tenant_info=tenant(features={"block_soft_match": True}),
    )
    findings = run(snap)
    assert keys(findings) == {
        (
            "soft-match-blocked",
            dn("alice"),
            cloud_id_for("alice"),
            "primarySmtp",
            "alice@contoso.com",
        ),
        ("hard-match-blocked", dn("alice"), cloud_id_for("alice"), None, None),
    }
    assert evidence(one(findings, "hard-match-blocked"))["case"] == "remediation-set-anchor"


def test_cloud_orphan_synced_and_cloud_only() -> None:
    """Synced and cloud-only users whose anchor no AD user has are orphans, each with its fix."""
    synced = cloud_user("ghost")
    prepared = cloud_user("stale", sync_enabled=None)
    findings = run(snapshot([], [synced, prepared]))
    assert keys(findings) == {
        ("cloud-orphan", None, cloud_id_for("ghost"), None, None),
        ("cloud-orphan", None, cloud_id_for("stale"), None, None),
    }
    fixes = {r["cloud_id"]: r["remediation"] for r in findings.to_dicts()}
    assert fixes == {
        cloud_id_for("ghost"): Action.manual,
        cloud_id_for("stale"): Action.clear_anchor,
    }


def test_cloud_orphan_names_out_of_scope_holder() -> None:
    """An anchor only an out-of-scope AD user has is still an orphan, saying who and why."""
    hidden = ad_user("kim", in_scope=False, out_of_scope_reason="OU=Disabled excluded")
    findings = run(snapshot([hidden], [cloud_user("kim")]))
    assert keys(findings) == {("cloud-orphan", dn("kim"), cloud_id_for("kim"), None, None)}
    row = one(findings, "cloud-orphan")
    assert row["severity"] == "medium"
    assert "out of sync scope (OU=Disabled excluded)" in row["detail"]
    assert evidence(row)["held_by_out_of_scope_ad_user"] is True


def test_incomplete_ad_source_gives_no_orphans() -> None:
    """If an AD source was not read completely nobody is called an orphan."""
    snap = snapshot(
        [ad_user("alice")], [cloud_user("alice"), cloud_user("ghost")], complete={"ad": False}
    )
    assert keys(run(snap)) == set()


def test_unmatched_ad_predicts_the_fallback_upn_without_a_domains_export() -> None:
    """No domains export: a .lab suffix can never be verified, so the predicted cloud UPN is
    <mailNickname>@<initial domain>, the initial domain read off the cloud users' UPNs."""
    user = ad_user("kim", upn="kim@corp.lab", mail_nickname="kim.l")
    admin = cloud_only_user("admin", upn="admin@contoso.onmicrosoft.com")
    snap = snapshot([user], [admin], tenant_info=Tenant(known=False))
    row = one(run(snap), "unmatched-ad")
    assert evidence(row)["predicted_cloud_upn"] == "kim.l@contoso.onmicrosoft.com"
    assert row["detail"].startswith(
        f"In-scope enabled AD user {dn('kim')} (kim@corp.lab) has no cloud user holding its "
        f"anchor {user['anchor']} and no soft-match candidate: the next sync creates a new cloud "
        "user kim.l@contoso.onmicrosoft.com (UPN suffix corp.lab can never be a verified tenant "
        "domain)"
    )


def test_unmatched_ad_with_refused_upn_characters_predicts_the_fallback() -> None:
    user = ad_user("lou", upn="lou lee@contoso.com", mail_nickname="lou")
    row = one(run(snapshot([user], [])), "unmatched-ad")
    assert evidence(row)["predicted_cloud_upn"] == "lou@contoso.onmicrosoft.com"
    assert "(its UPN has characters Entra ID does not accept)" in row["detail"]


def test_a_non_privileged_directory_role_blocks_soft_match_but_not_hard_match() -> None:
    """Exchange Administrator (no PRIVILEGED label): its holder is never soft-matched
    ("Existing Admin Role Conflict" names any admin role), but a hard match onto it is not
    refused by the 2026 hardening, which targets privileged roles only."""
    exchange = {"directory_roles": ["Exchange Administrator"], "admin_roles": []}
    soft = cloud_only_user("nina", **exchange)
    findings = run(snapshot([ad_user("nina")], [soft]))
    assert keys(findings) == {
        ("soft-match-blocked", dn("nina"), cloud_id_for("nina"), "primarySmtp", "nina@contoso.com")
    }
    assert (
        "holds directory role Exchange Administrator (Existing Admin Role Conflict)"
        in (one(findings, "soft-match-blocked")["detail"])
    )
    otto = ad_user("otto")
    prestamped = cloud_only_user("otto", immutable_id=otto["anchor"], **exchange)
    assert keys(run(snapshot([otto], [prestamped]))) == set()
    privileged = cloud_only_user(
        "otto",
        immutable_id=otto["anchor"],
        directory_roles=["Global Administrator"],
        admin_roles=["Global Administrator"],
    )
    assert keys(run(snapshot([otto], [privileged]))) == {
        ("hard-match-blocked", dn("otto"), cloud_id_for("otto"), None, None)
    }
