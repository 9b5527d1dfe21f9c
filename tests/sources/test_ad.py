"""sources/ad.py is the one door for AD records: a reader that is not a file (a live LDAP
search) yields the same records to the same mapper and gets the same rows, with errors that
name its own origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from audit.config import Settings
from audit.errors import InputError
from audit.model import SourceReport
from audit.sources.ad import AdRows, map_ad_records, prepare_ad_source
from audit.sources.detect import Notes
from audit.sources.files import import_files
from audit.sources.records import Record
from tests.sources.helpers import TAKEN_AT, ldif_file, person, settings

ESTATE = [
    person("Anne Dubois", "f7cc07d7-7c15-447d-876d-c01b0e5a9e38", mail="anne@contoso.com"),
    person(
        "Bob Martin",
        "8c4ac332-975f-4717-ad7b-ba4a4e968fff",
        uac=514,
        ou="OU=Disabled,DC=corp,DC=contoso,DC=com",
        proxyAddresses=["SMTP:bob@contoso.com", "smtp:b@contoso.com"],
    ),
    person("SRV01$", "0d2a4b6c-8e1f-4a3b-9c5d-7e6f8a9b0c1d", objectClass=["computer"]),
]


def live_records(page: int) -> list[Record]:
    """What a live LDAP page gives: binary attributes as bytes, every value a list, names in
    lower case (ldap3 returns raw values)."""
    out = []
    for dn, attrs in ESTATE:
        values = {
            name.lower(): [v if isinstance(v, bytes) else str(v) for v in vs]
            for name, raw in attrs.items()
            for vs in [raw if isinstance(raw, list) else [raw]]
        }
        out.append(Record(line=page, dn=dn, attrs=values))  # type: ignore[arg-type]
    return out


def map_live(records: list[Record], config: Settings, target: AdRows | None = None) -> SourceReport:
    """`records` through the door a live LDAP read uses (pages, raw values)."""
    return map_ad_records(
        records,
        prepare_ad_source(config.ad[0], "corp", None),
        where="ldaps://dc01",
        fmt="ldap",
        notes=Notes(),
        target=AdRows() if target is None else target,
        raw_text_is_bytes=False,
        position="page",
    )


def test_a_live_reader_gets_the_rows_an_ldif_export_gets(tmp_path: Path) -> None:
    config = settings(exclude_ous=["OU=Disabled,DC=corp,DC=contoso,DC=com"])
    from_file = import_files(
        ad=[("corp", ldif_file(tmp_path / "ad.ldf", ESTATE))],
        cloud=[],
        settings=config,
        taken_at=TAKEN_AT,
    )
    rows = AdRows()
    report = map_live(live_records(page=1), config, rows)
    assert_frame_equal(rows.frame(), from_file.ad_users)
    [file_report] = [s for s in from_file.sources if s.kind == "ad"]
    assert (report.rows, report.excluded, report.complete) == (
        file_report.rows,
        file_report.excluded,
        file_report.complete,
    )
    assert report.rows == 2 and report.excluded == {"computer": 1}


def test_a_live_error_names_the_source_page_and_object() -> None:
    [anne, *_] = live_records(page=4)
    broken = Record(anne.line, anne.dn, {**anne.attrs, "objectguid": [b"\x01\x02"]})
    with pytest.raises(InputError) as info:
        map_live([broken], settings())
    assert str(info.value) == (
        "ldaps://dc01 page 4, object CN=Anne Dubois,OU=Staff,DC=corp,DC=contoso,DC=com: "
        "objectGUID has 2 bytes, not 16"
    )


def test_an_attribute_no_user_has_is_phrased_for_what_was_read(tmp_path: Path) -> None:
    """An export may have left the attribute out; a live read asked for it, so it is unset or
    hidden from the bind account: each says so, with what it costs."""
    config = settings()
    from_file = import_files(
        ad=[("corp", ldif_file(tmp_path / "ad.ldf", ESTATE))],
        cloud=[],
        settings=config,
        taken_at=TAKEN_AT,
    )
    [file_report] = [s for s in from_file.sources if s.kind == "ad"]
    assert [w for w in file_report.warnings if "ConsistencyGuid" in w] == [
        "no user has mS-DS-ConsistencyGuid: if the export left it out, every anchor falls back "
        "to objectGUID, so users whose ConsistencyGuid differs (migrated, restamped) are matched "
        "wrongly and consistency-guid-invalid/-differs cannot be judged; export "
        "mS-DS-ConsistencyGuid"
    ]
    live = map_live(live_records(page=1), config)
    assert [w for w in live.warnings if "ConsistencyGuid" in w] == [
        "no user has mS-DS-ConsistencyGuid, though the read asked for it: unset in this "
        "directory, or hidden from the bind account by AD permissions; if hidden, every anchor "
        "falls back to objectGUID, so users whose ConsistencyGuid differs (migrated, restamped) "
        "are matched wrongly and consistency-guid-invalid/-differs cannot be judged: let the "
        "account read mS-DS-ConsistencyGuid"
    ]


def test_an_anchor_attribute_no_user_has_makes_the_source_incomplete() -> None:
    """employeeID configured as the anchor, and nobody has one: every anchor is unknown, so
    absence-based findings must not run on this source."""
    config = settings(anchor_attribute="employeeID")
    report = map_live(live_records(page=1), config)
    assert not report.complete
    assert (
        "no user has the anchor attribute employeeID (anchor_attribute): every anchor is "
        "unknown, so the source is treated as incomplete; check the name, that this forest has "
        "it and that it can be read"
    ) in report.warnings
