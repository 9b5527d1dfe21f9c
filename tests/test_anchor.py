"""Anchor conversions against the public vectors, and round trips for any GUID."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.anchor import (
    AnchorError,
    Encoding,
    ascii_guid_bytes_guid,
    connector_dn_from_immutable_id,
    decode_wrong_encodings,
    guid_from_immutable_id,
    identify_encoding,
    immutable_id_from_connector_dn,
    immutable_id_from_guid,
    is_canonical_immutable_id,
    parse_anchor,
)

VECTORS_FILE = Path(__file__).resolve().parent / "data" / "anchor-vectors.json"
FORM_KEYS = {
    "guid": "guid",
    "immutable_id": "immutable_id",
    "raw_hex": "hex",
    "ldap_filter": "ldap_filter",
    "connector_dn": "connector_dn",
}


def load_vectors() -> list[dict[str, str]]:
    return list(json.loads(VECTORS_FILE.read_text())["vectors"])


def test_every_vector_converts_from_every_form_to_every_form() -> None:
    """Whatever form of a published vector is pasted, all five forms come out exactly."""
    for vector in load_vectors():
        expected = {ours: vector[theirs] for theirs, ours in FORM_KEYS.items()}
        for theirs in FORM_KEYS:
            assert parse_anchor(vector[theirs]).as_dict() == expected, (theirs, vector["guid"])


def test_guid_forms_people_paste() -> None:
    """Braces, upper case, ADSI Edit's spaced hex and surrounding blanks are all accepted."""
    guid = "f7cc07d7-7c15-447d-876d-c01b0e5a9e38"
    for text in (
        "{F7CC07D7-7C15-447D-876D-C01B0E5A9E38}",
        "  f7cc07d7-7c15-447d-876d-c01b0e5a9e38 ",
        "D7 07 CC F7 15 7C 7D 44 87 6D C0 1B 0E 5A 9E 38",
        "d707ccf7157c7d44876dc01b0e5a9e38",
        "CN={3177664D397856386655534862634162446C71654F413D3D},OU=x",
    ):
        assert parse_anchor(text).guid == guid, text


def test_connector_dn_example_from_entra_docs() -> None:
    """The troubleshooting page's connector DN decodes to its anchor."""
    dn = "CN={783456306961654236304B58786A66746377643748773D3D}"
    assert immutable_id_from_connector_dn(dn) == "x4V0iaeB60KXxjftcwd7Hw=="
    assert connector_dn_from_immutable_id("x4V0iaeB60KXxjftcwd7Hw==") == dn


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "1wfM9xV8fUSHbcAbDlqeOA=",
        "AAAA",
        "System.Byte[]",
        "CN={ZZ}",
        "\\D7\\07",
        "d707ccf7157c7d44876dc01b0e5a9e",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_unparseable_values_raise(text: str) -> None:
    """Anything that is not 16 bytes in a known form is refused with a reason, not guessed."""
    with pytest.raises(AnchorError):
        parse_anchor(text)


def test_known_wrong_encodings_are_named() -> None:
    """Each mistake seen in the wild is recognised and tied back to the GUID it came from."""
    guid = "59815f49-920b-4e9d-ad6c-82b53aa4c102"
    u = uuid.UUID(guid)
    right = "SV+BWQuSnU6tbIK1OqTBAg=="
    cases = {
        right: Encoding.correct,
        base64.b64encode(u.bytes).decode(): Encoding.big_endian,
        base64.b64encode(guid.encode()).decode(): Encoding.guid_text_base64,
        base64.urlsafe_b64encode(u.bytes_le).decode(): Encoding.url_safe,
        right.rstrip("="): Encoding.unpadded,
        guid.upper(): Encoding.guid_text,
        u.bytes_le.hex(): Encoding.hex,
    }
    for value, encoding in cases.items():
        assert identify_encoding(value, guid) == encoding, value
    assert identify_encoding("System.Byte[]", guid) is None
    assert decode_wrong_encodings("System.Byte[]") == []


def test_ascii_guid_written_into_consistency_guid() -> None:
    """A GUID string stored as ASCII bytes (36 bytes) is recognised; real bytes are not."""
    guid = "59815f49-920b-4e9d-ad6c-82b53aa4c102"
    assert ascii_guid_bytes_guid(guid.encode()) == guid
    assert ascii_guid_bytes_guid(uuid.UUID(guid).bytes_le) is None


guids = st.uuids()


@given(guids)
def test_round_trip_through_every_form(value: uuid.UUID) -> None:
    forms = parse_anchor(str(value))
    assert forms.immutable_id == immutable_id_from_guid(value)
    assert is_canonical_immutable_id(forms.immutable_id)
    assert guid_from_immutable_id(forms.immutable_id) == str(value)
    for text in (
        forms.immutable_id,
        forms.hex,
        forms.ldap_filter,
        forms.connector_dn,
        "{" + str(value).upper() + "}",
    ):
        assert parse_anchor(text) == forms


@given(guids)
def test_wrong_encodings_always_lead_back_to_the_guid(value: uuid.UUID) -> None:
    guid = str(value)
    for wrong, encoding in (
        (base64.b64encode(value.bytes).decode(), Encoding.big_endian),
        (base64.b64encode(guid.encode()).decode(), Encoding.guid_text_base64),
        (guid, Encoding.guid_text),
    ):
        assert (guid, encoding) in decode_wrong_encodings(wrong)


@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(AnchorError):
        parse_anchor(text)
    decode_wrong_encodings(text)
