"""Duplicates family: two cloud accounts for one person, values shared in AD, AD values owned
by another cloud object."""

from __future__ import annotations

from audit.model import Action
from tests.factories import (
    ad_user,
    b64_anchor,
    cloud_id_for,
    cloud_only_user,
    cloud_user,
    guid_for,
    snapshot,
)
from tests.rules.helpers import dn, evidence, keys, one, run

QUARANTINED_ID = "9a9a9a9a-0000-4000-8000-000000000009"
GA = "Global Administrator"


def quarantined_twin(name: str) -> dict[str, object]:
    """The twin sync created when the original cloud account kept the UPN/SMTP."""
    upn = f"{name}4821@contoso.onmicrosoft.com"
    return cloud_user(name, id=QUARANTINED_ID, upn=upn)


def test_clean_matched_estate_has_no_findings() -> None:
    """A user's own mail equal to its own SMTP proxy and UPN is not a duplicate."""
    snap = snapshot([ad_user("alice"), ad_user("bob")], [cloud_user("alice"), cloud_user("bob")])
    assert keys(run(snap)) == set()


def test_duplicate_cloud_account_quarantined_twin() -> None:
    """AD user matched to a quarantined twin while the original cloud-only account keeps its
    address: duplicate-cloud-account naming both, merge remediation, no conflict finding."""
    findings = run(
        snapshot([ad_user("alice")], [quarantined_twin("alice"), cloud_only_user("alice")])
    )
    assert keys(findings) == {
        (
            "duplicate-cloud-account",
            dn("alice"),
            cloud_id_for("alice"),
            "mail,proxyAddresses,userPrincipalName",
            "alice@contoso.com",
        )
    }
    row = one(findings, "duplicate-cloud-account")
    assert row["remediation"] == Action.merge_duplicate_cloud
    assert QUARANTINED_ID in row["detail"] and cloud_id_for("alice") in row["detail"]
    ev = evidence(row)
    assert ev["matched_cloud_id"] == QUARANTINED_ID and ev["matched_looks_quarantined"] is True


def test_duplicate_cloud_account_merge_target_privileged() -> None:
    """The original account holds an admin role: the merge's hard match is refused too."""
    original = cloud_only_user("alice", admin_roles=[GA])
    findings = run(snapshot([ad_user("alice")], [quarantined_twin("alice"), original]))
    assert keys(findings) == {
        (
            "duplicate-cloud-account",
            dn("alice"),
            cloud_id_for("alice"),
            "mail,proxyAddresses,userPrincipalName",
            "alice@contoso.com",
        ),
        ("hard-match-blocked", dn("alice"), cloud_id_for("alice"), None, None),
    }
    assert evidence(one(findings, "hard-match-blocked"))["case"] == "remediation-merge-duplicate"


def test_duplicate_ad_attribute_every_party() -> None:
    """bob carries alice's address as a secondary smtp: both parties are listed; bob's export
    also collides with alice's cloud user."""
    bob = ad_user("bob", proxy_addresses=["SMTP:bob@contoso.com", "smtp:alice@contoso.com"])
    findings = run(snapshot([ad_user("alice"), bob], [cloud_user("alice"), cloud_user("bob")]))
    assert keys(findings) == {
        (
            "duplicate-ad-attribute",
            dn("alice"),
            None,
            "mail,proxyAddresses,userPrincipalName",
            "alice@contoso.com",
        ),
        ("duplicate-ad-attribute", dn("bob"), None, "proxyAddresses", "alice@contoso.com"),
        (
            "attribute-conflict-cloud",
            dn("bob"),
            cloud_id_for("alice"),
            "proxyAddresses",
            "alice@contoso.com",
        ),
    }
    row = one(findings.filter(findings["ad_dn"] == dn("bob")), "duplicate-ad-attribute")
    assert evidence(row)["parties"] == sorted([dn("alice"), dn("bob")])


def test_duplicate_mail_nickname_and_case_insensitive_upn() -> None:
    """mailNickname compares with mailNickname only; UPN compares without case."""
    a = ad_user("alice", mail_nickname="shared")
    b = ad_user("alice2", mail_nickname="Shared", upn="ALICE2@contoso.com")
    c = ad_user(
        "alice3",
        upn="alice2@Contoso.com",
        mail="alice3@contoso.com",
        proxy_addresses=["SMTP:alice3@contoso.com"],
        primary_smtp="alice3@contoso.com",
    )
    findings = run(
        snapshot(
            [a, b, c],
            [
                cloud_user("alice"),
                cloud_user("alice2", upn="ALICE2@contoso.com"),
                cloud_user(
                    "alice3",
                    upn="alice2@Contoso.com",
                    mail="alice3@contoso.com",
                    proxy_addresses=["SMTP:alice3@contoso.com"],
                    primary_smtp="alice3@contoso.com",
                ),
            ],
        )
    )
    got = {k for k in keys(findings) if k[0] == "duplicate-ad-attribute"}
    assert got == {
        ("duplicate-ad-attribute", dn("alice"), None, "mailNickname", "shared"),
        ("duplicate-ad-attribute", dn("alice2"), None, "mailNickname", "shared"),
        (
            "duplicate-ad-attribute",
            dn("alice2"),
            None,
            "mail,proxyAddresses,userPrincipalName",
            "alice2@contoso.com",
        ),
        ("duplicate-ad-attribute", dn("alice3"), None, "userPrincipalName", "alice2@contoso.com"),
    }


def test_out_of_scope_objects_are_not_parties() -> None:
    """A duplicate value on an out-of-scope AD object is not reported."""
    hidden = ad_user(
        "hidden", upn="alice@contoso.com", in_scope=False, out_of_scope_reason="filter"
    )
    assert keys(run(snapshot([ad_user("alice"), hidden], [cloud_user("alice")]))) == set()


def test_attribute_conflict_with_contact() -> None:
    """A contact owning a matched user's secondary smtp: AttributeValueMustBeUnique."""
    alice = ad_user("alice", proxy_addresses=["SMTP:alice@contoso.com", "smtp:sales@contoso.com"])
    contact = {
        "id": "contact-1",
        "object_type": "contact",
        "display_name": "Sales desk",
        "mail": "sales@contoso.com",
        "proxy_addresses": ["SMTP:sales@contoso.com"],
    }
    findings = run(snapshot([alice], [cloud_user("alice")], objects=[contact]))
    assert keys(findings) == {
        (
            "attribute-conflict-cloud",
            dn("alice"),
            "contact-1",
            "proxyAddresses",
            "sales@contoso.com",
        )
    }
    row = one(findings, "attribute-conflict-cloud")
    assert "AttributeValueMustBeUnique" in row["detail"]
    assert evidence(row)["owner_type"] == "contact"


def test_attribute_conflict_with_synced_user_not_a_duplicate_account() -> None:
    """Another user synced from AD owning the UPN is a conflict, not a mergeable duplicate."""
    other = cloud_user(
        "zed",
        upn="alice@contoso.com",
        mail="zed@contoso.com",
        proxy_addresses=["SMTP:zed@contoso.com"],
        primary_smtp="zed@contoso.com",
    )
    alice = ad_user("alice", anchor=b64_anchor(guid_for("alice")))
    twin = cloud_user("alice", upn="alice1234@contoso.onmicrosoft.com")
    findings = run(snapshot([alice, ad_user("zed", upn="zed.other@contoso.com")], [twin, other]))
    assert keys(findings) == {
        (
            "attribute-conflict-cloud",
            dn("alice"),
            cloud_id_for("zed"),
            "mail,proxyAddresses,userPrincipalName",
            "alice@contoso.com",
        )
    }
    assert evidence(one(findings, "attribute-conflict-cloud"))["owner_attributes"] == [
        "userPrincipalName"
    ]


def test_pending_candidate_is_not_a_conflict() -> None:
    """The soft-match candidate owning the AD user's address is a match, not a conflict."""
    assert {k[0] for k in keys(run(snapshot([ad_user("alice")], [cloud_only_user("alice")])))} == {
        "soft-match-pending"
    }


def test_target_address_shares_the_address_uniqueness_space() -> None:
    """An SMTP targetAddress equal to another AD user's proxy is a duplicate; one owned by an
    unrelated cloud user is a conflict. A user's own targetAddress equal to its own proxy (the
    remote-mailbox routing address) is neither."""
    routing = "smtp:carol@contoso.mail.onmicrosoft.com"
    carol = ad_user("carol", proxy_addresses=["SMTP:carol@contoso.com", routing])
    carol["target_address"] = "SMTP:carol@contoso.mail.onmicrosoft.com"
    dave = ad_user("dave", target_address="SMTP:carol@contoso.mail.onmicrosoft.com")
    erin = ad_user("erin", target_address="SMTP:shared@contoso.com")
    shared = cloud_only_user("shared", upn="shared@contoso.com")
    findings = run(
        snapshot(
            [carol, dave, erin],
            [
                cloud_user("carol", proxy_addresses=["SMTP:carol@contoso.com", routing]),
                cloud_user("dave"),
                cloud_user("erin"),
                shared,
            ],
        )
    )
    assert keys(findings) == {
        (
            "duplicate-ad-attribute",
            dn("carol"),
            None,
            "proxyAddresses,targetAddress",
            "carol@contoso.mail.onmicrosoft.com",
        ),
        (
            "duplicate-ad-attribute",
            dn("dave"),
            None,
            "targetAddress",
            "carol@contoso.mail.onmicrosoft.com",
        ),
        (
            "attribute-conflict-cloud",
            dn("erin"),
            cloud_id_for("shared"),
            "targetAddress",
            "shared@contoso.com",
        ),
        (
            # carol's cloud account owns the routing address, and dave is not its match
            "attribute-conflict-cloud",
            dn("dave"),
            cloud_id_for("carol"),
            "targetAddress",
            "carol@contoso.mail.onmicrosoft.com",
        ),
    }


def test_duplicate_sam_account_name_only_between_users_without_upn() -> None:
    """Two users without a UPN share a sAMAccountName (two forests): a duplicate, since the
    cloud UPN is built from it. With UPNs, the same sAMAccountName is no finding."""

    def no_upn(name: str, sam: str, source: str) -> dict[str, object]:
        address = f"{name}@contoso.com"
        return ad_user(
            name,
            upn=None,
            mail=address,
            proxy_addresses=[f"SMTP:{address}"],
            primary_smtp=address,
            sam_account_name=sam,
            source=source,
        )

    frank = no_upn("frank", "jdoe", "corp")
    gina = no_upn("gina", "JDoe", "fabrikam")
    hank = ad_user("hank", sam_account_name="jdoe")  # has a UPN
    findings = run(snapshot([frank, gina, hank], [cloud_user("hank")]))
    dupes = {k for k in keys(findings) if k[0] == "duplicate-ad-attribute"}
    assert dupes == {
        ("duplicate-ad-attribute", dn("frank"), None, "sAMAccountName", "jdoe"),
        ("duplicate-ad-attribute", dn("gina"), None, "sAMAccountName", "jdoe"),
    }
    row = one(findings.filter(findings["ad_dn"] == dn("frank")), "duplicate-ad-attribute")
    assert evidence(row)["uniqueness_space"] == "sAMAccountName"
