"""The shared joins: byte-order conversions, soft-match candidate choice, address keys."""

from __future__ import annotations

import base64
import uuid

import polars as pl
import pytest

from audit import anchor
from audit.model import AD_USERS_SCHEMA, CLOUD_OBJECTS_SCHEMA, CLOUD_USERS_SCHEMA
from audit.rules import addresses, shape
from audit.rules import joins as j
from tests.factories import ad_user, cloud_id_for, cloud_only_user, cloud_user, frame

GUIDS = ["f7cc07d7-7c15-447d-876d-c01b0e5a9e38", "8c4ac332-975f-4717-ad7b-ba4a4e968fff"]


@pytest.mark.parametrize("guid", GUIDS)
def test_byte_order_swap_matches_uuid(guid: str) -> None:
    """The vectorised bytes_le <-> RFC swap and GUID text agree with Python's uuid."""
    value = uuid.UUID(guid)
    df = pl.DataFrame(
        {"h": [value.bytes_le.hex()], "b64": [base64.b64encode(value.bytes_le).decode()]}
    )
    out = df.select(
        be=anchor.swap_guid_byte_order(pl.col("h")),
        text=anchor.guid_text_from_hex(anchor.swap_guid_byte_order(pl.col("h"))),
        back=anchor.hex_to_b64(pl.col("h")),
        hexed=anchor.b64_to_hex("b64"),
    ).row(0, named=True)
    assert out == {
        "be": value.bytes.hex(),
        "text": guid,
        "back": df["b64"][0],
        "hexed": value.bytes_le.hex(),
    }


def test_is_canonical_matches_python_check() -> None:
    """is_canonical agrees with anchor.is_canonical_immutable_id."""
    from audit.anchor import is_canonical_immutable_id

    values = ["1wfM9xV8fUSHbcAbDlqeOA==", "1wfM9xV8fUSHbcAbDlqeOA", "E1001", "System.Byte[]"]
    got = pl.DataFrame({"v": values}).select(anchor.is_canonical("v")).to_series().to_list()
    assert got == [is_canonical_immutable_id(v) for v in values]


def test_say_keeps_sentence_when_part_missing_and_braces_literal() -> None:
    """say() fills '?' for nulls and leaves JSON braces alone."""
    df = pl.DataFrame({"a": ["x", None]})
    got = df.select(shape.say("{} -Body '{\"k\":null}' {}", "a", pl.lit("z"))).to_series().to_list()
    assert got == ["x -Body '{\"k\":null}' z", "? -Body '{\"k\":null}' z"]


def _candidates(
    ad: list[dict[str, object]],
    cloud: list[dict[str, object]],
    objects: list[dict[str, object]] = (),
    upn: bool = True,
) -> dict[str, tuple[str, str]]:  # type: ignore[assignment]
    ad_f = frame(ad, AD_USERS_SCHEMA).with_row_index(j.AD_KEY)
    out = j.soft_match_candidates(
        ad_f,
        frame(cloud, CLOUD_USERS_SCHEMA),
        frame(list(objects), CLOUD_OBJECTS_SCHEMA),
        upn_allowed=upn,
    )
    names = dict(zip(ad_f[j.AD_KEY].to_list(), ad_f["sam_account_name"].to_list(), strict=True))
    return {names[r[j.AD_KEY]]: (r["cand_id"], r["matched_on"]) for r in out.to_dicts()}


def test_soft_match_prefers_primary_smtp_over_upn() -> None:
    """SMTP wins over UPN; UPN is used only when allowed and nothing owns the SMTP."""
    by_smtp = cloud_only_user("smtpowner", upn="x@contoso.com", primary_smtp="alice@contoso.com")
    by_upn = cloud_only_user("upnowner", upn="alice@contoso.com", primary_smtp="y@contoso.com")
    bob_upn = cloud_only_user("bobupn", upn="bob@contoso.com", primary_smtp="z@contoso.com")
    ad = [ad_user("alice"), ad_user("bob")]
    assert _candidates(ad, [by_smtp, by_upn, bob_upn]) == {
        "alice": (cloud_id_for("smtpowner"), "primarySmtp"),
        "bob": (cloud_id_for("bobupn"), "userPrincipalName"),
    }
    assert _candidates(ad, [by_smtp, by_upn, bob_upn], upn=False) == {
        "alice": (cloud_id_for("smtpowner"), "primarySmtp")
    }


def test_soft_match_group_on_smtp_preempts_upn() -> None:
    """A group owning the primary SMTP is the (failing) candidate even if a user has the UPN."""
    group = {
        "id": "g1",
        "object_type": "group",
        "display_name": "G",
        "mail": None,
        "proxy_addresses": ["smtp:alice@contoso.com"],
    }
    assert _candidates(
        [ad_user("alice")], [cloud_user("alice", primary_smtp="other@contoso.com")], [group]
    ) == {"alice": ("g1", "primarySmtp")}


def test_address_keys_one_row_per_distinct_value() -> None:
    """UPN = mail = primary SMTP give one key; a secondary smtp another; x500 none."""
    row = ad_user(
        "alice", proxy_addresses=["SMTP:alice@contoso.com", "smtp:A.Smith@Contoso.com", "X500:/o=x"]
    )
    keys = addresses.address_keys(frame([row], AD_USERS_SCHEMA), "dn", ("upn", "mail")).collect()
    assert sorted(keys["address"].to_list()) == ["a.smith@contoso.com", "alice@contoso.com"]
