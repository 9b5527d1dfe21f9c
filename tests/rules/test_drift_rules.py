"""Drift family: upn-suffix-unverified, upn-drift, enabled-drift over crafted estates."""

from __future__ import annotations

import json

import polars as pl

from audit.classify import classify
from audit.model import Tenant
from audit.rules import drift
from tests.factories import ad_user, cloud_only_user, cloud_user, settings, snapshot, tenant

RULES = drift.RULES


def dn(name: str) -> str:
    return f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"


def run(snap, rules=RULES) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return classify(snap, settings(), rules=rules)


def found(frame: pl.DataFrame) -> set[tuple[object, ...]]:
    return set(
        frame.select(
            "code", "ad_dn", "attribute", "value", "proposed_value", "severity"
        ).iter_rows()
    )


def evidence(frame: pl.DataFrame, code: str) -> dict[str, object]:
    row = frame.filter(pl.col("code") == code)
    assert row.height == 1
    return json.loads(row.item(0, "evidence"))  # type: ignore[no-any-return]


# --- upn-suffix-unverified -----------------------------------------------------------------


def test_local_suffix_of_unmatched_user_predicts_onmicrosoft_upn_from_mail_nickname() -> None:
    """An unmatched user with a .local UPN is reported with <mailNickname>@<initial domain>."""
    snap = snapshot([ad_user("ann", upn="ann.smith@corp.local", mail_nickname="asmith")])
    frame = run(snap)
    assert found(frame) == {
        (
            "upn-suffix-unverified",
            dn("ann"),
            "userPrincipalName",
            "ann.smith@corp.local",
            "asmith@contoso.onmicrosoft.com",
            "medium",
        )
    }
    row = frame.row(0, named=True)
    assert row["cloud_state"] == "none" and row["remediation"] == "manual"
    assert evidence(frame, "upn-suffix-unverified")["mail_nickname_from"] == "mailNickname"


def test_predicted_nickname_follows_the_documented_order_primary_smtp_first() -> None:
    """With no mailNickname, the primary SMTP prefix wins over mail and UPN (FACTS.md example)."""
    user = ad_user(
        "user3",
        upn="user3@contoso.com",
        mail="user2@contoso.com",
        mail_nickname=None,
        proxy_addresses=["SMTP:user1@contoso.com"],
        primary_smtp="user1@contoso.com",
    )
    snap = snapshot([user], tenant_info=tenant(verified=("fabrikam.com",)))
    assert found(run(snap)) == {
        (
            "upn-suffix-unverified",
            dn("user3"),
            "userPrincipalName",
            "user3@contoso.com",
            "user1@contoso.onmicrosoft.com",
            "medium",
        )
    }


def test_predicted_nickname_falls_back_to_mail_then_secondary_smtp() -> None:
    """Without nickname and primary SMTP the mail prefix is used; with no usable UPN prefix
    either, the first secondary smtp prefix is."""
    by_mail = ad_user(
        "mia",
        upn="mia@corp.local",
        mail="mia.m@contoso.com",
        mail_nickname="",
        proxy_addresses=[],
        primary_smtp=None,
    )
    by_secondary = ad_user(
        "sec",
        upn="@corp.local",
        mail=None,
        mail_nickname=None,
        proxy_addresses=["X500:/o=x", "smtp:second@contoso.com"],
        primary_smtp=None,
    )
    assert found(run(snapshot([by_mail, by_secondary]))) == {
        (
            "upn-suffix-unverified",
            dn("mia"),
            "userPrincipalName",
            "mia@corp.local",
            "mia.m@contoso.onmicrosoft.com",
            "medium",
        ),
        (
            "upn-suffix-unverified",
            dn("sec"),
            "userPrincipalName",
            "@corp.local",
            "second@contoso.onmicrosoft.com",
            "medium",
        ),
    }


def test_matched_user_with_unverified_suffix_names_the_actual_cloud_upn_and_no_drift() -> None:
    """A matched user is reported with its real cloud UPN, and upn-drift does not repeat it."""
    snap = snapshot(
        [ad_user("bob", upn="bob@corp.local")],
        [cloud_user("bob", upn="bob@contoso.onmicrosoft.com")],
    )
    frame = run(snap)
    assert found(frame) == {
        (
            "upn-suffix-unverified",
            dn("bob"),
            "userPrincipalName",
            "bob@corp.local",
            "bob@contoso.onmicrosoft.com",
            "medium",
        )
    }
    assert frame.item(0, "cloud_state") == "active"
    assert frame.item(0, "cloud_upn") == "bob@contoso.onmicrosoft.com"


def test_subdomain_of_verified_domain_counts_only_when_listed() -> None:
    """sales.contoso.com is unverified unless the tenant lists it itself."""
    users = [ad_user("carl", upn="carl@Sales.Contoso.com")]
    assert found(run(snapshot(users))) == {
        (
            "upn-suffix-unverified",
            dn("carl"),
            "userPrincipalName",
            "carl@Sales.Contoso.com",
            "carl@contoso.onmicrosoft.com",
            "medium",
        )
    }
    listed = tenant(verified=("contoso.com", "sales.contoso.com"))
    assert found(run(snapshot(users, tenant_info=listed))) == set()


def test_without_tenant_domains_only_suffixes_that_can_never_be_verified_are_reported() -> None:
    """No domains export: a .local, .lab or single-label suffix can never be verified in any
    tenant and is reported, with the fallback UPN on the initial domain the cloud users show;
    a real domain (fabrikam.com) cannot be judged and is not. Out-of-scope users never are."""
    unknown = Tenant(known=False)
    users = [
        ad_user("dan", upn="dan@corp.local"),
        ad_user("lab", upn="lab@contoso.lab"),
        ad_user("one", upn="one@corp"),
        ad_user("fab", upn="fab@fabrikam.com"),
    ]
    admin = cloud_only_user("admin", upn="admin@contoso.onmicrosoft.com")
    frame = run(snapshot(users, [admin], tenant_info=unknown))
    assert found(frame) == {
        (
            "upn-suffix-unverified",
            dn(name),
            "userPrincipalName",
            upn,
            f"{name}@contoso.onmicrosoft.com",
            "medium",
        )
        for name, upn in (
            ("dan", "dan@corp.local"),
            ("lab", "lab@contoso.lab"),
            ("one", "one@corp"),
        )
    }
    row = frame.filter(pl.col("ad_dn") == dn("dan")).row(0, named=True)
    assert row["detail"] == (
        f"AD user {dn('dan')} has UPN dan@corp.local whose suffix corp.local can never be a "
        "verified tenant domain (.local is not a delegated top-level domain); Entra will give "
        "it the UPN dan@contoso.onmicrosoft.com."
    )
    ev = json.loads(row["evidence"])
    assert (ev["initial_domain"], ev["initial_domain_from"]) == (
        "contoso.onmicrosoft.com",
        "cloud users' UPNs",
    )
    out = ad_user("eli", upn="eli@corp.local", in_scope=False)
    assert found(run(snapshot([out]))) == set()


# --- upn-drift -----------------------------------------------------------------------------


def test_quarantined_twin_upn_is_drift_with_that_cause() -> None:
    """A cloud UPN <prefix><4 digits>@<tenant>.onmicrosoft.com is drift: a quarantined duplicate."""
    snap = snapshot([ad_user("dave")], [cloud_user("dave", upn="dave1234@contoso.onmicrosoft.com")])
    frame = run(snap)
    assert found(frame) == {
        (
            "upn-drift",
            dn("dave"),
            "userPrincipalName",
            "dave1234@contoso.onmicrosoft.com",
            "dave@contoso.com",
            "medium",
        )
    }
    assert evidence(frame, "upn-drift")["cause"] == "quarantined-duplicate"


def test_move_into_federated_domain_is_a_federated_domain_change() -> None:
    """A UPN moved from a managed to a federated domain is blamed on Federated Domain Change."""
    info = tenant(verified=("contoso.com", "fabrikam.com"), federated=("fabrikam.com",))
    snap = snapshot(
        [ad_user("eve", upn="eve@fabrikam.com")],
        [cloud_user("eve", upn="eve@contoso.com", on_prem_upn="eve@fabrikam.com")],
        tenant_info=info,
    )
    frame = run(snap)
    assert found(frame) == {
        (
            "upn-drift",
            dn("eve"),
            "userPrincipalName",
            "eve@contoso.com",
            "eve@fabrikam.com",
            "medium",
        )
    }
    assert evidence(frame, "upn-drift")["cause"] == "federated-domain-change"


def test_delivered_but_unapplied_upn_change_is_distinguished_from_unexported() -> None:
    """Cloud onPremisesUserPrincipalName = AD UPN means sync delivered it but the cloud UPN was
    not updated; an old onPremisesUserPrincipalName means the change was not exported."""
    applied = ad_user("fay", upn="fay.new@contoso.com")
    pending = ad_user("gus", upn="gus.new@contoso.com")
    snap = snapshot(
        [applied, pending],
        [
            cloud_user("fay", upn="fay@contoso.com", on_prem_upn="fay.new@contoso.com"),
            cloud_user("gus", upn="gus@contoso.com", on_prem_upn="gus@contoso.com"),
        ],
    )
    frame = run(snap)
    assert found(frame) == {
        (
            "upn-drift",
            dn("fay"),
            "userPrincipalName",
            "fay@contoso.com",
            "fay.new@contoso.com",
            "medium",
        ),
        (
            "upn-drift",
            dn("gus"),
            "userPrincipalName",
            "gus@contoso.com",
            "gus.new@contoso.com",
            "medium",
        ),
    }
    causes = {
        row["ad_dn"]: json.loads(row["evidence"])["cause"] for row in frame.iter_rows(named=True)
    }
    assert causes == {
        dn("fay"): "upn-update-not-applied",
        dn("gus"): "upn-change-not-exported",
    }


def test_case_only_upn_difference_and_unmatched_users_are_not_drift() -> None:
    """UPNs compare without case; a cloud-only user with the same UPN is not a matched pair."""
    snap = snapshot(
        [ad_user("hal"), ad_user("ida", upn="ida@contoso.com")],
        [
            cloud_user("hal", upn="HAL@Contoso.com"),
            cloud_only_user("ida", upn="ida.other@contoso.com"),
        ],
    )
    assert found(run(snap)) == set()


# --- enabled-drift -------------------------------------------------------------------------


def test_disabled_in_ad_but_enabled_in_cloud_is_high_and_reverse_is_low() -> None:
    """AD disabled + cloud enabled is high (leaver keeps access); the reverse is low."""
    snap = snapshot(
        [ad_user("leaver", enabled=False, user_account_control=514), ad_user("blocked")],
        [cloud_user("leaver"), cloud_user("blocked", account_enabled=False)],
    )
    frame = run(snap)
    assert found(frame) == {
        ("enabled-drift", dn("leaver"), "accountEnabled", "true", "false", "high"),
        ("enabled-drift", dn("blocked"), "accountEnabled", "false", "true", "low"),
    }
    assert set(frame.get_column("cloud_state")) == {"active"}


def test_enabled_state_of_unmatched_or_out_of_scope_users_is_not_compared() -> None:
    """Only hard-matched in-scope pairs are compared; unknown cloud state is not drift."""
    snap = snapshot(
        [
            ad_user("oos", enabled=False, in_scope=False),
            ad_user("unknown", enabled=False),
        ],
        [cloud_user("oos"), cloud_user("unknown", account_enabled=None)],
    )
    assert found(run(snap)) == set()


def test_pairs_of_different_people_are_not_upn_drift() -> None:
    """A shared anchor (anchor-duplicate-ad) or a holder whose identity agrees on nothing
    (anchor-held-by-other) means two people: their UPNs differ for that reason, not drift."""
    debra = ad_user("debra")
    clone = ad_user(
        "debra-test",
        object_guid=debra["object_guid"],
        anchor=debra["anchor"],
        upn="debra.test@contoso.com",
    )
    isaiah = ad_user("isaiah", anchor=ad_user("lee")["anchor"], object_sid="S-1-5-21-1-2-3-1001")
    lee = cloud_user("lee", on_prem_dn=dn("lee"), on_prem_sid="S-1-5-21-1-2-3-1002")
    frame = run(snapshot([debra, clone, isaiah], [cloud_user("debra"), lee]))
    assert found(frame) == set()


def test_invalid_characters_are_named_as_the_cause_of_the_fallback_upn() -> None:
    """A UPN with a diacritic or a space gets <mailNickname>@<initial domain> in the cloud:
    the drift names the invalid characters, not a sync setting."""
    zoe = ad_user("zoe", upn="zoë.müller@contoso.com", mail_nickname="zoe")
    cloud = cloud_user(
        "zoe", upn="zoe@contoso.onmicrosoft.com", on_prem_upn="zoë.müller@contoso.com"
    )
    frame = run(snapshot([zoe], [cloud]))
    assert found(frame) == {
        (
            "upn-drift",
            dn("zoe"),
            "userPrincipalName",
            "zoe@contoso.onmicrosoft.com",
            "zoë.müller@contoso.com",
            "medium",
        )
    }
    assert evidence(frame, "upn-drift")["cause"] == "ad-upn-invalid-characters"


def test_never_verifiable_suffix_with_fallback_cloud_upn_is_not_upn_drift() -> None:
    """Without a domains export, a .local user whose cloud UPN is the onmicrosoft fallback is
    upn-suffix-unverified (naming the fallback), not upn-drift blaming an unapplied update."""
    user = ad_user("mo", upn="mo@corp.local")
    twin = cloud_user("mo", upn="mo@contoso.onmicrosoft.com", on_prem_upn="mo@corp.local")
    frame = run(snapshot([user], [twin], tenant_info=Tenant(known=False)))
    assert found(frame) == {
        (
            "upn-suffix-unverified",
            dn("mo"),
            "userPrincipalName",
            "mo@corp.local",
            "mo@contoso.onmicrosoft.com",
            "medium",
        )
    }
    assert frame.item(0, "detail") == (
        f"AD user {dn('mo')} has UPN mo@corp.local whose suffix corp.local can never be a "
        "verified tenant domain (.local is not a delegated top-level domain); its matched cloud "
        "user has UPN mo@contoso.onmicrosoft.com, the <mailNickname>@<initial domain> fallback "
        "Entra gives such a UPN."
    )
