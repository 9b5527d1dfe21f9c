"""Inputs that are broken or hostile fail fast with one clear line, never a partial snapshot."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from audit.config import Settings
from audit.errors import InputError
from audit.sources.files import import_files
from tests.sources.helpers import TAKEN_AT, ldif_entry, ldif_file, person


def ad_import(path: Path):  # type: ignore[no-untyped-def]
    return import_files(ad=[(None, path)], cloud=[], settings=Settings(), taken_at=TAKEN_AT)


def cloud_import(path: Path):  # type: ignore[no-untyped-def]
    return import_files(ad=[], cloud=[path], settings=Settings(), taken_at=TAKEN_AT)


def test_ldif_truncated_mid_base64(tmp_path: Path) -> None:
    text = (
        ldif_entry(*person("Ann", str(uuid.uuid4())))
        + "\n"
        + ldif_entry(*person("Bo", str(uuid.uuid4())))
    )
    cut = text.index("objectGUID:: ", text.index("CN=Bo")) + len("objectGUID:: ") + 10
    path = tmp_path / "cut.ldif"
    path.write_text(text[:cut])
    with pytest.raises(InputError) as err:
        ad_import(path)
    assert err.value.line == text[:cut].count("\n") + 1
    assert "truncated or invalid base64" in err.value.reason
    assert "\n" not in str(err.value)


def test_ldif_truncated_mid_base64_of_an_unused_attribute(tmp_path: Path) -> None:
    text = ldif_entry(*person("Ann", str(uuid.uuid4()), thumbnailPhoto=os.urandom(300)))
    cut = text.index("thumbnailPhoto:: ") + 40
    path = tmp_path / "cut.ldif"
    path.write_text(text[:cut])
    with pytest.raises(InputError, match="thumbnailPhoto: truncated or invalid base64"):
        ad_import(path)


def test_binary_garbage_fails_on_its_head(tmp_path: Path) -> None:
    path = tmp_path / "garbage.ldif"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InputError, match="binary content"):
        ad_import(path)


def test_sparse_1gb_of_nonsense_fails_fast_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.ldif"
    with path.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + os.urandom(1024))
        handle.truncate(1 << 30)  # sparse: a 1 GB file that costs no disk
    assert path.stat().st_size == 1 << 30
    for reader in (ad_import, cloud_import):
        start = time.perf_counter()
        with pytest.raises(InputError, match="binary content"):
            reader(path)
        assert time.perf_counter() - start < 0.5


def test_text_that_is_no_known_format_fails_on_its_head(tmp_path: Path) -> None:
    path = tmp_path / "prose.txt"
    path.write_text("Dear admin, here are the users you asked for.\n" * 1000)
    with pytest.raises(InputError, match="expected LDIF or CSV, found unrecognised content"):
        ad_import(path)


def test_wrong_format_for_the_option(tmp_path: Path) -> None:
    path = ldif_file(tmp_path / "users.ldif", [person("Ann", str(uuid.uuid4()))])
    with pytest.raises(InputError, match=r"users\.ldif:1: expected JSON or CSV, found ldif"):
        cloud_import(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ldif"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        ad_import(empty)
    with pytest.raises(InputError, match="cannot read"):
        ad_import(tmp_path / "nope.ldif")


def test_nul_after_the_head_is_refused(tmp_path: Path) -> None:
    entries = [person(f"U{i}", str(uuid.uuid4())) for i in range(400)]
    text = "\n".join(ldif_entry(dn, a) for dn, a in entries)
    assert len(text) > 70_000
    path = tmp_path / "nul.ldif"
    path.write_text(text[:70_000] + "\x00" + text[70_000:])
    with pytest.raises(InputError, match="NUL character"):
        ad_import(path)


def test_duplicate_dns_name_both_lines(tmp_path: Path) -> None:
    dn, attrs = person("Ann", str(uuid.uuid4()))
    path = tmp_path / "dup.ldif"
    path.write_text(
        ldif_entry(dn, attrs)
        + "\n"
        + ldif_entry(*person("Bo", str(uuid.uuid4())))
        + "\n"
        + ldif_entry(dn.upper(), {**attrs, "objectGUID": uuid.uuid4().bytes_le})
    )
    second = path.read_text().split("\n").index(f"dn: {dn.upper()}") + 1
    with pytest.raises(InputError) as err:
        ad_import(path)
    assert err.value.line == second
    assert f"(first at {path}:1)" in str(err.value)


def test_line_without_a_colon(tmp_path: Path) -> None:
    path = tmp_path / "bad.ldif"
    path.write_text("dn: CN=A,DC=x\nobjectClass: user\nthis line is broken\n")
    with pytest.raises(InputError, match=r"bad\.ldif:3: expected 'attribute: value'"):
        ad_import(path)


def test_wrong_length_object_guid(tmp_path: Path) -> None:
    path = ldif_file(
        tmp_path / "g.ldif", [person("Ann", str(uuid.uuid4()), objectGUID=b"\x01\x02\x03")]
    )
    with pytest.raises(InputError, match=r"g\.ldif:1: objectGUID has 3 bytes, not 16"):
        ad_import(path)


def test_ten_thousand_proxy_addresses(tmp_path: Path) -> None:
    proxies = ["SMTP:ann@contoso.com"] + [f"smtp:ann{i}@contoso.com" for i in range(9999)]
    path = ldif_file(
        tmp_path / "big.ldif", [person("Ann", str(uuid.uuid4()), proxyAddresses=proxies)]
    )
    row = ad_import(path).ad_users.row(0, named=True)
    assert row["proxy_addresses"] == proxies
    assert row["primary_smtp"] == "ann@contoso.com"


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"id": "1"}) + "\n" + json.dumps({"id": "2"}) + '\n{"id": "3",,}\n')
    with pytest.raises(InputError, match=r"u\.jsonl:3: invalid JSON"):
        cloud_import(path)


def test_json_value_items_must_be_objects(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_text(json.dumps({"value": ["just a string"]}))
    with pytest.raises(InputError, match="expected an object in 'value'"):
        cloud_import(path)


def test_user_without_id(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_text(json.dumps({"value": [{"userPrincipalName": "a@b.com"}]}))
    with pytest.raises(InputError, match="user without an id"):
        cloud_import(path)


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    path.write_text(json.dumps({"value": [{"id": "1"}, {"id": "2"}]}, indent=1)[:-12])
    with pytest.raises(InputError, match=r"u\.json:\d+: invalid JSON"):
        cloud_import(path)


def test_domain_list_with_a_non_domain_line(tmp_path: Path) -> None:
    path = tmp_path / "domains.txt"
    path.write_text("contoso.com\nfabrikam.com\nnot a domain\n")
    with pytest.raises(InputError, match=r"domains\.txt:3: not a domain name"):
        import_files(ad=[], cloud=[], domains=path, settings=Settings(), taken_at=TAKEN_AT)


def test_a_value_far_beyond_any_directory_limit_is_cut_with_one_warning(tmp_path: Path) -> None:
    """A 75 MB displayName ran analyze past 10 minutes and 8 GB: values are cut at import."""
    from audit.sources.snapshot import MAX_VALUE_CHARS

    dn, attrs = person("Huge", str(uuid.uuid4()))
    attrs = {**attrs, "displayName": "x" * 3_000_000}
    path = ldif_file(tmp_path / "huge.ldif", [(dn, attrs), person("Ann", str(uuid.uuid4()))])
    started = time.monotonic()
    snapshot = ad_import(path)
    assert time.monotonic() - started < 20
    names = snapshot.ad_users["display_name"].to_list()
    assert max(len(n or "") for n in names) == MAX_VALUE_CHARS
    (report,) = [s for s in snapshot.sources if s.kind == "ad"]
    assert report.warnings[-1] == (
        f"1 display_name value longer than 4,096 characters were cut to that length "
        f"(the longest, 3,000,000 characters, on {dn})"
    )


def test_a_group_s_huge_value_is_cut_too(tmp_path: Path) -> None:
    """Groups and contacts reach the reports (they own addresses) like users do."""
    from audit.sources.snapshot import MAX_VALUE_CHARS

    path = tmp_path / "objects.json"
    group = {
        "@odata.type": "#microsoft.graph.group",
        "id": "g1",
        "displayName": "y" * 10_000,
        "mail": "g@contoso.com",
    }
    user = {"id": "u1", "userPrincipalName": "a@contoso.com"}
    path.write_text(json.dumps({"value": [user, group]}))
    snapshot = cloud_import(path)
    assert snapshot.cloud_objects["display_name"].str.len_chars().max() == MAX_VALUE_CHARS
    (report,) = [s for s in snapshot.sources if s.kind == "cloud"]
    assert report.warnings[-1] == (
        "1 display_name value longer than 4,096 characters were cut to that length "
        "(the longest, 10,000 characters, on g1)"
    )


def test_json_nested_beyond_reason_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"value": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError) as err:
        cloud_import(path)
    assert "nested too deeply" in err.value.reason and "\n" not in str(err.value)
