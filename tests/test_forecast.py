"""The forecast: one crafted person per branch of Entra's order, each outcome asserted exactly;
the planned scope (OUs entering and leaving, nested OUs, the LDAP filter); the deletion
threshold; the tenant switches; what cannot be forecast; the verdict."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.config import Settings, Thresholds
from audit.forecast import FORECAST_SCHEMA, ForecastError, ScopeChange, forecast, planned_scope
from audit.forecast_verdict import GO, GO_WITH_FIXES, NO_GO, verdict
from audit.model import Feature, Snapshot
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

STAFF = "OU=Staff,DC=corp,DC=contoso,DC=com"
CONTRACTORS = "OU=Contractors,DC=corp,DC=contoso,DC=com"
INITIAL = "contoso.onmicrosoft.com"


def in_ou(name: str, ou: str, **overrides: Any) -> dict[str, Any]:
    return ad_user(name, dn=f"CN={name},{ou}", **overrides)


def group(name: str, address: str) -> dict[str, Any]:
    return {
        "id": cloud_id_for(f"group:{name}"),
        "object_type": "group",
        "display_name": name,
        "mail": address,
        "proxy_addresses": [f"SMTP:{address}"],
    }


def people(snap: Snapshot, change: ScopeChange | None = None, **thresholds: Any) -> dict[str, Any]:
    result = forecast(snap, Settings(thresholds=Thresholds(**thresholds)), change or ScopeChange())
    assert result.people.schema == pl.Schema(FORECAST_SCHEMA)
    rows = result.people.to_dicts()
    by_upn = {r["ad_dn"].split(",")[0].removeprefix("CN="): r for r in rows}
    assert len(by_upn) == len(rows), "one row per person"
    return by_upn


def outcome(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["outcome"], row["error"], row["cloud_id"], row["blocker"], row["fix_action"])


# --- one person per branch ---------------------------------------------------------------------


def branch_estate(**tenant_args: Any) -> Snapshot:
    og_guid = guid_for("ogheld-consistency")
    ad = [
        ad_user("stay"),
        ad_user("mover", upn="mover.new@contoso.com", mail="mover.new@contoso.com"),
        ad_user("leaver", enabled=False),
        ad_user("taker"),
        ad_user("admin"),
        ad_user("resynced"),
        ad_user("wrong"),
        ad_user("restored"),
        ad_user("softy"),
        ad_user("helpdesk"),
        ad_user("stale"),
        ad_user("boss"),
        ad_user("newbie"),
        ad_user(
            "localguy",
            upn="localguy@corp.local",
            mail="localguy@contoso.com",
            primary_smtp="localguy@contoso.com",
            proxy_addresses=["SMTP:localguy@contoso.com"],
        ),
        ad_user("clash"),
        ad_user("grouped", proxy_addresses=["SMTP:grouped@contoso.com", "smtp:team@contoso.com"]),
        ad_user("twin1", anchor=b64_anchor(guid_for("twin1"))),
        ad_user("twin2", anchor=b64_anchor(guid_for("twin1"))),
        ad_user("ogheld", consistency_guid=b64_anchor(og_guid), anchor=b64_anchor(og_guid)),
    ]
    cloud = [
        cloud_user("stay"),
        cloud_user("mover"),
        cloud_user("leaver"),
        cloud_only_user("taker", immutable_id=b64_anchor(guid_for("taker"))),
        cloud_only_user(
            "admin",
            immutable_id=b64_anchor(guid_for("admin")),
            admin_roles=["Global Administrator"],
        ),
        cloud_only_user(
            "resynced",
            immutable_id=b64_anchor(guid_for("resynced")),
            on_prem_object_id=str(uuid.uuid4()),
        ),
        cloud_user("other", immutable_id=b64_anchor(guid_for("wrong"))),
        cloud_user("restored", deleted_at=NOW - timedelta(days=5), account_enabled=False),
        cloud_only_user("softy"),
        cloud_only_user("stale", immutable_id=b64_anchor(guid_for("someone-else"))),
        cloud_only_user("boss", directory_roles=["Exchange Administrator"]),
        cloud_only_user(
            "clash2", proxy_addresses=["SMTP:clash2@contoso.com", "smtp:clash@contoso.com"]
        ),
        cloud_user("ogheld"),  # holds b64(objectGUID); sync sends the ConsistencyGuid
        cloud_user("twin1"),
    ]
    objects = [group("Helpdesk", "helpdesk@contoso.com"), group("Team", "team@contoso.com")]
    return snapshot(ad, cloud, objects=objects, tenant_info=tenant(**tenant_args))


def test_every_branch_of_entras_order_on_one_estate() -> None:
    rows = people(branch_estate())
    expected = {
        "stay": ("unchanged", None, cloud_id_for("stay"), None, None),
        "mover": ("update", None, cloud_id_for("mover"), None, None),
        "leaver": ("update", None, cloud_id_for("leaver"), None, None),
        "taker": ("hard-match", None, cloud_id_for("taker"), None, None),
        "admin": (
            "error",
            "InvalidHardMatch",
            cloud_id_for("admin"),
            "hard-match-refused",
            "roles-detour",
        ),
        "resynced": (
            "error",
            "AttributeUpdateNotAllowed",
            cloud_id_for("resynced"),
            "hard-match-refused",
            "clear-onprem-object-id",
        ),
        "wrong": ("update", None, cloud_id_for("other"), "wrong-person", "manual"),
        "restored": ("hard-match", None, cloud_id_for("restored"), None, None),
        "softy": ("soft-match", None, cloud_id_for("softy"), None, None),
        "helpdesk": (
            "error",
            "ObjectTypeMismatch",
            cloud_id_for("group:Helpdesk"),
            "object-type-mismatch",
            "manual",
        ),
        "stale": (
            "error",
            "InvalidSoftMatch",
            cloud_id_for("stale"),
            "invalid-soft-match",
            "set-anchor",
        ),
        "boss": (
            "error",
            "Existing Admin Role Conflict",
            cloud_id_for("boss"),
            "admin-role-conflict",
            "roles-detour",
        ),
        "newbie": ("create", None, None, None, None),
        "localguy": ("create", None, None, "unverified-upn-suffix", "ad-set-attribute"),
        # a new user has no counterpart; the reason names who owns its colliding values
        "clash": ("create", None, None, "quarantine", "set-anchor"),
        "grouped": ("error", "AttributeValueMustBeUnique", None, "address-not-unique", "manual"),
        "twin1": ("error", None, cloud_id_for("twin1"), "duplicate-anchor", "manual"),
        "twin2": ("error", None, cloud_id_for("twin1"), "duplicate-anchor", "manual"),
        "ogheld": (
            "error",
            "InvalidSoftMatch",
            cloud_id_for("ogheld"),
            "objectguid-anchored",
            "set-anchor",
        ),
    }
    assert {name: outcome(row) for name, row in rows.items()} == expected


def test_predicted_upns_and_quarantine() -> None:
    rows = people(branch_estate())
    predicted = {name: row["predicted_upn"] for name, row in rows.items()}
    assert predicted["newbie"] == "newbie@contoso.com"
    # unverified suffix: <mailNickname>@<initial domain>
    assert predicted["localguy"] == f"localguy@{INITIAL}"
    # the UPN collides with another user's proxy address: the placeholder UPN
    assert predicted["clash"] == f"clash####@{INITIAL}"
    assert rows["clash"]["property_conflict"] == ["UserPrincipalName", "ProxyAddress"]
    # the admin's second account: its UPN and SMTP are the admin's
    assert predicted["boss"] == f"boss####@{INITIAL}"
    assert rows["boss"]["property_conflict"] == ["UserPrincipalName", "ProxyAddress"]
    assert predicted["mover"] == "mover.new@contoso.com"
    assert predicted["softy"] == "softy@contoso.com"
    assert predicted["admin"] is None and rows["newbie"]["property_conflict"] is None


def test_updates_name_what_the_sync_writes() -> None:
    rows = people(branch_estate())
    assert "userPrincipalName mover@contoso.com -> mover.new@contoso.com" in rows["mover"]["reason"]
    assert "mail mover@contoso.com -> mover.new@contoso.com" in rows["mover"]["reason"]
    assert "accountEnabled true -> false" in rows["leaver"]["reason"]
    assert "nothing to change" in rows["stay"]["reason"]


def test_finding_codes_name_the_rules_that_report_the_person() -> None:
    codes = {name: row["finding_codes"] for name, row in people(branch_estate()).items()}
    assert codes["admin"] == ["hard-match-blocked"]
    assert codes["wrong"] == ["anchor-held-by-other"]
    assert codes["restored"] == ["anchor-held-by-deleted"]
    assert codes["softy"] == ["soft-match-pending"]
    assert codes["boss"] == codes["stale"] == codes["helpdesk"] == ["soft-match-blocked"]
    assert codes["newbie"] == codes["localguy"] == ["unmatched-ad"]
    assert codes["twin1"] == ["anchor-duplicate-ad"]
    assert codes["stay"] == codes["taker"] == []


def test_tenant_switches_change_the_outcome() -> None:
    rows = people(
        branch_estate(features={"block_soft_match": True, "block_hard_match_takeover": True})
    )
    # no soft match at all: a new user whose UPN and SMTP collide with the waiting account
    assert outcome(rows["softy"]) == (
        "create",
        None,
        None,  # a new user: the waiting account is not its counterpart
        "quarantine",
        "set-anchor",
    )
    assert rows["softy"]["predicted_upn"] == f"softy####@{INITIAL}"
    assert "the tenant blocks soft match" in rows["softy"]["reason"]
    assert outcome(rows["taker"]) == (
        "error",
        "InvalidHardMatch",
        cloud_id_for("taker"),
        "hard-match-refused",
        "manual",
    )


def test_a_restored_user_colliding_with_a_waiting_account_is_a_blocker() -> None:
    snap = snapshot(
        [ad_user("megan")],
        [
            cloud_user("megan", deleted_at=NOW - timedelta(days=3), id=cloud_id_for("old")),
            cloud_only_user("megan"),
        ],
    )
    row = people(snap)["megan"]
    assert outcome(row) == (
        "hard-match",
        None,
        cloud_id_for("old"),
        "restore-collides",
        "purge-deleted-holder",
    )


# --- the planned scope -------------------------------------------------------------------------


def scoped_estate() -> Snapshot:
    excluded = f"excluded OU {CONTRACTORS}"
    ad = [
        in_ou("ann", STAFF),
        in_ou("ben", STAFF),
        in_ou("cid", STAFF),  # no cloud account yet: nothing to delete
        in_ou("dan", CONTRACTORS, in_scope=False, out_of_scope_reason=excluded),
        # the importer judges the filter outside the synced OUs too
        in_ou("eve", CONTRACTORS, in_scope=False, out_of_scope_reason=f"{excluded}; filter"),
        in_ou(
            "msol",
            CONTRACTORS,
            in_scope=False,
            out_of_scope_reason="Entra Connect default rule: sAMAccountName starts with MSOL_ "
            "(the sync account)",
        ),
        in_ou("fay", f"OU=Temp,{CONTRACTORS}", in_scope=False, out_of_scope_reason=excluded),
    ]
    cloud = [cloud_user("ann"), cloud_user("ben"), cloud_only_user("dan")]
    return snapshot(ad, cloud)


def test_ous_entering_and_leaving_scope() -> None:
    change = ScopeChange(include_ous=(CONTRACTORS,), exclude_ous=(STAFF,))
    rows = people(scoped_estate(), change)
    assert {n: (r["scope"], r["outcome"], r["cloud_id"]) for n, r in rows.items()} == {
        "ann": ("leaves", "soft-delete", cloud_id_for("ann")),
        "ben": ("leaves", "soft-delete", cloud_id_for("ben")),
        "cid": ("leaves", "unchanged", None),
        "dan": ("enters", "soft-match", cloud_id_for("dan")),
        "fay": ("enters", "create", None),
        # the source's LDAP filter still keeps eve out: she is nobody's concern
    }


def test_the_most_specific_planned_ou_decides() -> None:
    ad = planned_scope(
        scoped_estate().ad_users,
        ScopeChange(include_ous=(CONTRACTORS,), exclude_ous=(f"OU=Temp, {CONTRACTORS.lower()}",)),
    )
    scope = dict(ad.select(pl.col("dn").str.extract(r"CN=(\w+)"), "in_scope").iter_rows())
    assert scope == {
        "ann": True, "ben": True, "cid": True, "dan": True, "eve": False, "fay": False,
        "msol": False,
    }  # fmt: skip
    reasons = dict(
        ad.select(pl.col("dn").str.extract(r"CN=(\w+)"), "out_of_scope_reason").iter_rows()
    )
    assert reasons["fay"] == f"excluded OU OU=Temp, {CONTRACTORS.lower()} (planned)"
    assert reasons["eve"] == "filter" and reasons["dan"] is None


def test_more_deletions_than_the_threshold_stop_the_export() -> None:
    snap = scoped_estate()
    change = ScopeChange(exclude_ous=(STAFF,))
    settings = Settings(thresholds=Thresholds(deletion_threshold=1))
    decided = verdict(forecast(snap, settings, change))
    assert decided.decision == NO_GO
    assert decided.deletions == 2
    assert [(b.kind, b.people, b.no_go) for b in decided.blockers] == [
        ("deletion-threshold", 2, True)
    ]
    # at the threshold the export still runs
    settings = Settings(thresholds=Thresholds(deletion_threshold=2))
    assert verdict(forecast(snap, settings, change)).decision == GO


# --- what cannot be forecast -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ad", "cloud"])
def test_an_incomplete_source_is_refused(kind: str) -> None:
    snap = snapshot([ad_user("ann")], [cloud_user("ann")], complete={kind: False})
    with pytest.raises(ForecastError, match="a forecast needs"):
        forecast(snap, Settings(), ScopeChange())


def test_sync_off_needs_enable_sync_and_sync_on_refuses_it() -> None:
    never = snapshot(
        [ad_user("ann")],
        [cloud_only_user("ann", immutable_id=b64_anchor(guid_for("ann")))],
        tenant_info=tenant(dirsync_enabled=False, last_dirsync=None),
    )
    with pytest.raises(ForecastError, match="add --enable-sync"):
        forecast(never, Settings(), ScopeChange())
    rows = people(never, ScopeChange(enable_sync=True))
    assert outcome(rows["ann"]) == ("hard-match", None, cloud_id_for("ann"), None, None)
    on = snapshot([ad_user("ann")], [cloud_user("ann")])
    with pytest.raises(ForecastError, match="already syncs"):
        forecast(on, Settings(), ScopeChange(enable_sync=True))


def test_what_was_not_supplied_is_said() -> None:
    snap = snapshot(
        [ad_user("ann")], [cloud_user("ann")], complete={"deleted": None, "roles": None}
    )
    notes = forecast(snap, Settings(), ScopeChange()).notes
    assert any("soft-deleted users were not supplied" in n for n in notes)
    assert any("role assignments were not supplied" in n for n in notes)


# --- the verdict --------------------------------------------------------------------------------


def test_verdicts() -> None:
    clean = snapshot([ad_user("ann"), ad_user("ben")], [cloud_user("ann"), cloud_only_user("ben")])
    decided = verdict(forecast(clean, Settings(), ScopeChange()))
    assert (decided.decision, decided.blockers) == (GO, ())
    assert decided.sentence() == "GO: nothing blocks the change (2 people forecast)"
    assert decided.counts == {
        "unchanged": 1, "update": 0, "hard-match": 0, "soft-match": 1, "create": 0,
        "error": 0, "soft-delete": 0,
    }  # fmt: skip

    fixable = snapshot(
        [ad_user("ann")],
        [cloud_only_user("ann", immutable_id=b64_anchor(guid_for("ann")), admin_roles=["GA"])],
    )
    assert verdict(forecast(fixable, Settings(), ScopeChange())).decision == GO_WITH_FIXES

    decided = verdict(forecast(branch_estate(), Settings(), ScopeChange()))
    assert decided.decision == NO_GO
    kinds = [(b.kind, b.people) for b in decided.blockers]
    # ordered by how many people each affects, then by name
    assert kinds == sorted(kinds, key=lambda k: (-k[1], k[0]))
    assert {k for k, _ in kinds if k in ("wrong-person", "duplicate-anchor")} == {
        "wrong-person", "duplicate-anchor"
    }  # fmt: skip
    assert decided.sentence().startswith(
        "NO-GO: Two in-scope AD users send the same anchor (2 people); An anchor links two "
        "different people (1 person); "
    )


def test_upn_changes_of_managed_users_wait_for_the_tenant_switch() -> None:
    ad = [
        ad_user("mover", upn="mover.new@contoso.com", mail="mover@contoso.com"),
        ad_user("fed", upn="fed.new@fabrikam.com", mail="fed@contoso.com"),
    ]
    cloud = [cloud_user("mover"), cloud_user("fed", upn="fed@fabrikam.com")]
    off = tenant(
        verified=("contoso.com", "fabrikam.com"),
        federated=("fabrikam.com",),
        features={"synchronize_upn_for_managed_users": False},
    )
    rows = people(snapshot(ad, cloud, tenant_info=off))
    # managed domain: the change is blocked, the UPN stays
    assert rows["mover"]["outcome"] == "unchanged"
    assert rows["mover"]["predicted_upn"] == "mover@contoso.com"
    assert "synchronizeUpnForManagedUsersEnabled is off" in rows["mover"]["reason"]
    # federated domain: the switch is about managed users only
    assert rows["fed"]["outcome"] == "update"
    assert rows["fed"]["predicted_upn"] == "fed.new@fabrikam.com"
    on = replace(
        off,
        features=replace(off.features, synchronize_upn_for_managed_users=Feature(True, "graph")),
    )
    assert people(snapshot(ad, cloud, tenant_info=on))["mover"]["predicted_upn"] == (
        "mover.new@contoso.com"
    )


@given(st.lists(st.text(alphabet=" \t\u2003,=+\\aBcÄ", max_size=12), min_size=1, max_size=8))
def test_the_vectorised_dn_normalisation_is_scope_normalized_dn(dns: list[str]) -> None:
    from audit.forecast import normalized_dns
    from audit.sources.scope import normalized_dn

    assert normalized_dns(pl.Series(dns)).to_list() == [normalized_dn(d) for d in dns]


def test_a_planned_ou_that_holds_nobody_is_refused() -> None:
    typo = "OU=Contractor,DC=corp,DC=contoso,DC=com"
    with pytest.raises(ForecastError, match=f"--include-ou {typo}: no AD user"):
        forecast(scoped_estate(), Settings(), ScopeChange(include_ous=(typo,)))


def test_a_leaving_copy_does_not_delete_the_account_another_user_still_sends() -> None:
    """A cross-forest move: the old account's OU leaves scope, the new account (its
    mS-DS-ConsistencyGuid copied) stays: the cloud user is kept, and counted nowhere."""
    anchor = b64_anchor(guid_for("ann"))
    ad = [
        in_ou("ann", STAFF),
        in_ou("ann2", CONTRACTORS, anchor=anchor, consistency_guid=anchor),
        in_ou("bob", CONTRACTORS),
        in_ou("bob2", CONTRACTORS, anchor=b64_anchor(guid_for("bob"))),
    ]
    snap = snapshot(ad, [cloud_user("ann"), cloud_user("bob")])
    rows = people(snap, ScopeChange(exclude_ous=(CONTRACTORS,)))
    assert {n: (r["outcome"], r["cloud_id"]) for n, r in rows.items()} == {
        "ann": ("unchanged", cloud_id_for("ann")),
        "ann2": ("unchanged", cloud_id_for("ann")),  # leaves; ann still sends the anchor
        "bob": ("soft-delete", cloud_id_for("bob")),  # deleted once...
        "bob2": ("unchanged", cloud_id_for("bob")),  # ...not twice
    }
    assert "still in scope sends the same anchor" in rows["ann2"]["reason"]


def test_a_value_another_user_owns_stays_quarantined_after_a_soft_match() -> None:
    ad = [ad_user("ivan")]
    mailbox = "ivan@contoso.com"
    cloud = [
        # matches on primary SMTP; its UPN differs
        cloud_only_user("ivan", upn="ivan.cloud@contoso.com", mail=mailbox,
                        primary_smtp=mailbox, proxy_addresses=[f"SMTP:{mailbox}"]),
        # ...and another user already has the AD user's UPN
        cloud_only_user("other", upn=mailbox, mail="other@contoso.com",
                        primary_smtp="other@contoso.com",
                        proxy_addresses=["SMTP:other@contoso.com"]),
    ]  # fmt: skip
    row = people(snapshot(ad, cloud))["ivan"]
    assert row["outcome"] == "soft-match"
    assert row["predicted_upn"] == "ivan.cloud@contoso.com"  # the UPN stays quarantined
    # its SMTP proxy is the same address: both values stay with the other user
    assert row["property_conflict"] == ["UserPrincipalName", "ProxyAddress"]
    assert row["finding_codes"] == ["soft-match-pending", "attribute-conflict-cloud"]


def test_what_one_persons_joins_cannot_see() -> None:
    """Two AD users new to the cloud with one UPN (another forest's copy): one of them is
    quarantined. Two AD users finding one cloud-only account (one by primary SMTP, one by
    UPN): only one gets it."""
    ad = [
        ad_user("nina"),
        ad_user("nina-fab", source="fab", upn="nina@contoso.com", mail="nina.f@contoso.com",
                primary_smtp="nina.f@contoso.com", proxy_addresses=["SMTP:nina.f@contoso.com"],
                dn="CN=nina-fab,OU=Staff,DC=fab,DC=local"),
        ad_user("omar", mail="shared@contoso.com", primary_smtp="shared@contoso.com",
                proxy_addresses=["SMTP:shared@contoso.com"]),
        ad_user("olga", upn="shared@contoso.com", mail="olga@contoso.com",
                primary_smtp="olga@contoso.com", proxy_addresses=["SMTP:olga@contoso.com"]),
    ]  # fmt: skip
    cloud = [cloud_only_user("shared")]
    rows = people(snapshot(ad, cloud))
    for name in ("nina", "nina-fab"):
        assert (rows[name]["outcome"], rows[name]["blocker"]) == ("create", "quarantine")
        assert "UserPrincipalName" in rows[name]["property_conflict"]
        assert (
            "another AD user in scope has the same UserPrincipalName value"
            in (rows[name]["reason"])
        )
    for name in ("omar", "olga"):
        assert (rows[name]["outcome"], rows[name]["cloud_id"]) == (
            "soft-match",
            cloud_id_for("shared"),
        )
        assert rows[name]["blocker"] == "contested-candidate"


def test_a_new_users_address_another_ad_user_has_is_quarantined() -> None:
    """duplicate-ad-attribute's case, for a user new to the cloud: the shared proxy stays with
    one of them."""
    ad = [
        ad_user("pia", proxy_addresses=["SMTP:pia@contoso.com", "smtp:team@contoso.com"]),
        ad_user("per", proxy_addresses=["SMTP:per@contoso.com", "smtp:team@contoso.com"]),
    ]
    rows = people(snapshot(ad, [cloud_user("per")]))
    assert (rows["pia"]["outcome"], rows["pia"]["blocker"]) == ("create", "quarantine")
    assert rows["pia"]["property_conflict"] == ["ProxyAddress"]
    assert "same ProxyAddress value" in rows["pia"]["reason"]
    # per is already joined: the quarantine happened when it synced, its outcome is its own
    assert (rows["per"]["outcome"], rows["per"]["blocker"]) == ("unchanged", None)
