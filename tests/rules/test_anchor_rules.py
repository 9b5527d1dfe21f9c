"""Anchor family: who holds an AD user's sourceAnchor and whether anchors are well-formed."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest

from audit.model import Action
from tests.factories import (
    NOW,
    ad_user,
    b64_anchor,
    cloud_id_for,
    cloud_only_user,
    cloud_user,
    guid_for,
    snapshot,
)
from tests.rules.helpers import dn, evidence, keys, one, run

DELETED_ID = "0d0d0d0d-0000-4000-8000-000000000001"


def deleted_twin(name: str, **overrides: object) -> dict[str, object]:
    """The soft-deleted former twin of ad_user(name): it keeps the anchor."""
    fields: dict[str, object] = {
        "id": DELETED_ID,
        "upn": f"{DELETED_ID.replace('-', '')}{name}@contoso.com",
        "deleted_at": NOW - timedelta(days=3),
    }
    fields.update(overrides)
    return cloud_user(name, **fields)


def test_clean_matched_estate_has_no_findings() -> None:
    """A clean matched estate (and a ConsistencyGuid equal to objectGUID) yields nothing."""
    carol = ad_user("carol")
    carol["consistency_guid"] = carol["anchor"]
    carol["anchor_attribute"] = "mS-DS-ConsistencyGuid"
    snap = snapshot(
        [ad_user("alice"), ad_user("bob"), carol],
        [cloud_user("alice"), cloud_user("bob"), cloud_user("carol")],
    )
    assert keys(run(snap)) == set()


def test_classic_deleted_holder_with_waiting_cloud_only_user() -> None:
    """Anchor held by a soft-deleted user while a cloud-only namesake waits: exactly one
    anchor-held-by-deleted (purge, naming the waiting account), no soft-match-pending."""
    snap = snapshot([ad_user("alice")], [deleted_twin("alice"), cloud_only_user("alice")])
    findings = run(snap)
    assert keys(findings) == {("anchor-held-by-deleted", dn("alice"), DELETED_ID, None, None)}
    row = one(findings, "anchor-held-by-deleted")
    assert row["remediation"] == Action.purge_deleted_holder
    assert row["cloud_state"] == "deleted"
    assert row["anchor"] == b64_anchor(guid_for("alice"))
    assert cloud_id_for("alice") in row["detail"]
    assert "waits to be soft-matched" in row["detail"]
    assert evidence(row)["waiting_cloud_id"] == cloud_id_for("alice")


def test_deleted_holder_without_waiting_user_proposes_restore() -> None:
    """With nobody waiting for the address, restoring the deleted holder is proposed."""
    findings = run(snapshot([ad_user("alice")], [deleted_twin("alice")]))
    assert keys(findings) == {("anchor-held-by-deleted", dn("alice"), DELETED_ID, None, None)}
    assert one(findings, "anchor-held-by-deleted")["remediation"] == Action.restore_deleted_holder


def test_missing_deleted_data_makes_no_deleted_claim() -> None:
    """Without the deleted-items read (the classic estate minus its deleted user) there is no
    anchor-held-by-deleted claim; the waiting account is a soft-match-pending whose evidence and
    detail say soft-deleted users were not supplied."""
    snap = snapshot([ad_user("alice")], [cloud_only_user("alice")], complete={"deleted": False})
    findings = run(snap)
    assert keys(findings) == {
        (
            "soft-match-pending",
            dn("alice"),
            cloud_id_for("alice"),
            "primarySmtp",
            "alice@contoso.com",
        )
    }
    row = one(findings, "soft-match-pending")
    assert evidence(row)["deleted_users_known"] is False
    assert "soft-deleted users were not supplied" in row["detail"]


def test_active_holder_wins_over_deleted_holder() -> None:
    """When an active cloud user holds the anchor, a deleted one also holding it is no finding."""
    snap = snapshot([ad_user("alice")], [cloud_user("alice"), deleted_twin("alice")])
    assert keys(run(snap)) == set()


def test_anchor_held_by_other_person() -> None:
    """An active holder agreeing on no identity attribute is anchor-held-by-other."""
    mallory = cloud_user("mallory", immutable_id=b64_anchor(guid_for("alice")))
    findings = run(snapshot([ad_user("alice")], [mallory]))
    assert keys(findings) == {
        ("anchor-held-by-other", dn("alice"), cloud_id_for("mallory"), None, None)
    }


def test_anchor_held_by_other_not_raised_when_only_sam_agrees() -> None:
    """One agreeing attribute (on-premises sAMAccountName here) is enough to trust the link."""
    renamed = cloud_user(
        "alice",
        upn="a.renamed@contoso.com",
        mail="a.renamed@contoso.com",
        primary_smtp="a.renamed@contoso.com",
        proxy_addresses=["SMTP:a.renamed@contoso.com"],
        on_prem_upn=None,
        on_prem_dn=None,
    )
    assert "anchor-held-by-other" not in {
        k[0] for k in keys(run(snapshot([ad_user("alice")], [renamed])))
    }


def _wrong_forms(guid: str) -> dict[str, str]:
    value = uuid.UUID(guid)
    right = base64.b64encode(value.bytes_le).decode()
    return {
        "big-endian": base64.b64encode(value.bytes).decode(),
        "guid-text-base64": base64.b64encode(str(value).encode()).decode(),
        "url-safe": base64.urlsafe_b64encode(value.bytes_le).decode(),
        "unpadded": right.rstrip("="),
        "guid-text": str(value),
        "hex": value.bytes_le.hex(),
    }


@pytest.mark.parametrize("encoding", sorted(_wrong_forms(guid_for("bob"))))
def test_wrong_encoding_names_ad_user_and_correct_value(encoding: str) -> None:
    """Each known wrong encoding of a prepared hard match names the AD user, the mistake and the
    right value; the InvalidSoftMatch it causes is not reported a second time."""
    guid = guid_for("bob")
    wrong = _wrong_forms(guid)[encoding]
    # the URL-safe form differs from the correct one only where base64 has + or /
    assert encoding != "url-safe" or "-" in wrong or "_" in wrong, "pick a GUID with + or /"
    snap = snapshot([ad_user("bob")], [cloud_only_user("bob", immutable_id=wrong)])
    findings = run(snap)
    assert keys(findings) == {
        ("anchor-format-invalid", dn("bob"), cloud_id_for("bob"), "onPremisesImmutableId", wrong)
    }
    row = one(findings, "anchor-format-invalid")
    assert row["proposed_value"] == b64_anchor(guid)
    assert row["remediation"] == Action.fix_anchor_encoding
    assert evidence(row)["encoding"] == encoding


def test_system_byte_array_literal_is_format_invalid() -> None:
    """'System.Byte[]' from Export-Csv is format-invalid (no AD user to name) and the candidate's
    foreign immutableId blocks the soft match."""
    snap = snapshot([ad_user("carol")], [cloud_only_user("carol", immutable_id="System.Byte[]")])
    findings = run(snap)
    assert keys(findings) == {
        (
            "anchor-format-invalid",
            None,
            cloud_id_for("carol"),
            "onPremisesImmutableId",
            "System.Byte[]",
        ),
        (
            "soft-match-blocked",
            dn("carol"),
            cloud_id_for("carol"),
            "primarySmtp",
            "carol@contoso.com",
        ),
    }
    assert one(findings, "anchor-format-invalid")["remediation"] == Action.manual


def test_soft_deleted_user_with_wrong_encoding_is_reported() -> None:
    """Soft-deleted users' anchors are checked too (cloud_state deleted)."""
    guid = guid_for("dave")
    wrong = _wrong_forms(guid)["big-endian"]
    deleted = cloud_user("dave", immutable_id=wrong, deleted_at=NOW - timedelta(days=1))
    findings = run(snapshot([ad_user("dave")], [deleted, cloud_user("dave", id="live-dave")]))
    assert keys(findings) == {
        ("anchor-format-invalid", dn("dave"), cloud_id_for("dave"), "onPremisesImmutableId", wrong)
    }
    assert one(findings, "anchor-format-invalid")["cloud_state"] == "deleted"


def test_employee_id_anchors_are_fine_when_they_match() -> None:
    """Non-base64 anchors (employeeID) that equal an AD anchor are not format-invalid; an
    unmatched one in such a deployment is a cloud-orphan, not a format problem."""
    ad = [ad_user("erin", anchor="E1001", anchor_attribute="employeeID")]
    cloud = [cloud_user("erin", immutable_id="E1001"), cloud_user("gone", immutable_id="E0999")]
    assert keys(run(snapshot(ad, cloud))) == {
        ("cloud-orphan", None, cloud_id_for("gone"), None, None)
    }


def test_anchor_duplicate_ad_lists_every_party() -> None:
    """Two in-scope AD users with one anchor: one finding per party; the copy also shows as a
    differing ConsistencyGuid and as linked to the wrong person."""
    anchor = b64_anchor(guid_for("alice"))
    copy = ad_user(
        "alicecopy",
        consistency_guid=anchor,
        anchor=anchor,
        anchor_attribute="mS-DS-ConsistencyGuid",
    )
    findings = run(snapshot([ad_user("alice"), copy], [cloud_user("alice")]))
    assert keys(findings) == {
        ("anchor-duplicate-ad", dn("alice"), cloud_id_for("alice"), "sourceAnchor", anchor),
        ("anchor-duplicate-ad", dn("alicecopy"), cloud_id_for("alice"), "sourceAnchor", anchor),
        ("anchor-held-by-other", dn("alicecopy"), cloud_id_for("alice"), None, None),
        ("consistency-guid-differs", dn("alicecopy"), None, "mS-DS-ConsistencyGuid", anchor),
    }
    assert (
        dn("alicecopy")
        in one(findings.filter(findings["ad_dn"] == dn("alice")), "anchor-duplicate-ad")["detail"]
    )


def test_out_of_scope_duplicate_anchor_is_not_a_party() -> None:
    """Only in-scope AD users count for anchor-duplicate-ad."""
    anchor = b64_anchor(guid_for("alice"))
    hidden = ad_user("hidden", anchor=anchor, in_scope=False, out_of_scope_reason="OU excluded")
    assert keys(run(snapshot([ad_user("alice"), hidden], [cloud_user("alice")]))) == set()


def test_consistency_guid_ascii_text_proposes_right_value() -> None:
    """A ConsistencyGuid holding the ASCII text of a GUID is invalid, with the right base64."""
    guid = guid_for("frank")
    text = base64.b64encode(guid.encode()).decode()
    frank = ad_user(
        "frank", consistency_guid=text, anchor=text, anchor_attribute="mS-DS-ConsistencyGuid"
    )
    findings = run(snapshot([frank], [cloud_user("frank", immutable_id=text)]))
    assert keys(findings) == {
        ("consistency-guid-invalid", dn("frank"), None, "mS-DS-ConsistencyGuid", text)
    }
    row = one(findings, "consistency-guid-invalid")
    assert row["proposed_value"] == b64_anchor(guid)
    assert evidence(row)["matches_object_guid"] is True


def test_consistency_guid_wrong_length() -> None:
    """A ConsistencyGuid of 10 bytes is invalid and has no proposed value."""
    short = base64.b64encode(b"0123456789").decode()
    grace = ad_user("grace", consistency_guid=short)
    findings = run(snapshot([grace], [cloud_user("grace")]))
    assert keys(findings) == {
        ("consistency-guid-invalid", dn("grace"), None, "mS-DS-ConsistencyGuid", short)
    }
    assert one(findings, "consistency-guid-invalid")["proposed_value"] is None


def test_consistency_guid_differs_is_info() -> None:
    """A migrated user's ConsistencyGuid (another GUID) is an info finding only."""
    migrated = b64_anchor(guid_for("old-forest-henry"))
    henry = ad_user(
        "henry",
        consistency_guid=migrated,
        anchor=migrated,
        anchor_attribute="mS-DS-ConsistencyGuid",
    )
    findings = run(snapshot([henry], [cloud_user("henry", immutable_id=migrated)]))
    assert keys(findings) == {
        ("consistency-guid-differs", dn("henry"), None, "mS-DS-ConsistencyGuid", migrated)
    }
    assert one(findings, "consistency-guid-differs")["severity"] == "info"


def test_consistency_guid_set_after_sync_strands_the_objectguid_anchored_account() -> None:
    """The cloud account still holds the user's objectGUID while a ConsistencyGuid set later is
    what Entra is sent: one high finding naming both, no orphan, no soft-match noise."""
    stamped = b64_anchor(guid_for("restamped-mia"))
    mia = ad_user(
        "mia", consistency_guid=stamped, anchor=stamped, anchor_attribute="mS-DS-ConsistencyGuid"
    )
    cloud = cloud_user("mia")  # immutableId = base64 of mia's objectGUID
    findings = run(snapshot([mia], [cloud]))
    assert keys(findings) == {
        (
            "consistency-guid-differs",
            dn("mia"),
            cloud_id_for("mia"),
            "mS-DS-ConsistencyGuid",
            stamped,
        )
    }
    row = one(findings, "consistency-guid-differs")
    assert row["severity"] == "high"
    assert row["remediation"] == "manual"
    assert evidence(row)["cloud_holds_object_guid"] is True


def test_consistency_guid_of_16_text_characters_names_the_guid_it_begins() -> None:
    """16 bytes that are the first 16 characters of the user's own objectGUID text: invalid
    (not also consistency-guid-differs), with the GUID named and its right base64."""
    guid = guid_for("ivy")
    text = base64.b64encode(guid[:16].encode("ascii")).decode()
    ivy = ad_user(
        "ivy", consistency_guid=text, anchor=text, anchor_attribute="mS-DS-ConsistencyGuid"
    )
    findings = run(snapshot([ivy], [cloud_user("ivy", immutable_id=text)]))
    assert keys(findings) == {
        ("consistency-guid-invalid", dn("ivy"), None, "mS-DS-ConsistencyGuid", text)
    }
    row = one(findings, "consistency-guid-invalid")
    assert row["proposed_value"] == b64_anchor(guid)
    assert row["detail"] == (
        f"AD user {dn('ivy')} (ivy@contoso.com) has mS-DS-ConsistencyGuid {text}: 16 "
        f"characters of text ('{guid[:16]}'), the start of the text of GUID {guid} (its own "
        f"objectGUID), not GUID bytes; the anchor Entra sees is that text; the right value is "
        f"{b64_anchor(guid)}"
    )
    assert evidence(row) == {
        "size": 16,
        "ascii_text": True,
        "ascii_guid": guid,
        "matches_object_guid": True,
    }


def test_consistency_guid_of_16_braced_upper_case_text_characters() -> None:
    """'{' + the first 15 characters, upper-case, as [guid].ToString('B').ToUpper() cut."""
    guid = guid_for("jon")
    raw = ("{" + guid.upper())[:16].encode("ascii")
    text = base64.b64encode(raw).decode()
    jon = ad_user("jon", consistency_guid=text, anchor=text)
    row = one(run(snapshot([jon], [])), "consistency-guid-invalid")
    assert (row["proposed_value"], evidence(row)["ascii_guid"]) == (b64_anchor(guid), guid)


def test_consistency_guid_of_16_text_characters_of_no_known_guid() -> None:
    text = base64.b64encode(b"0123abcd-4567-ef").decode()
    kim = ad_user("kim", consistency_guid=text, anchor=text)
    row = one(run(snapshot([kim], [])), "consistency-guid-invalid")
    assert row["proposed_value"] is None
    assert "the start of a GUID's text that no AD user has" in row["detail"]
    assert evidence(row)["ascii_text"] is True
