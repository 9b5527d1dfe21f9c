"""The live LDAP reader (audit/sources/ldap.py, issue 12 item 3) against the seeded Samba DC:
the frame it reads equals the import of an `ldapsearch -LLL` export of the same DC with the
same attributes, every objectGUID and anchor is what Samba's own ldbsearch says, StartTLS reads
the same, and each thing an operator can get wrong is one line naming the URL, never the
password, with nothing kept of a source that was not read to its end."""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit.config import AdSource, Settings
from audit.errors import InputError
from audit.model import SourceReport
from audit.sources.ad import AdRows, prepare_ad_source
from audit.sources.files import import_files
from audit.sources.ldap import ldap_attributes, read_ad_ldap
from audit.sources.ldap_pages import PEOPLE_FILTER
from tests.ad.ldb import samba_users
from tests.ad.relay import Relay
from tests.ad.samba_dc import DcInfo, make_tls
from tests.ad.seed import CORP, Seeded

pytestmark = pytest.mark.ad

PASSWORD_ENV = "SYNCAUDIT_TEST_AD_PASSWORD"


def corp(dc: DcInfo, **changes: object) -> AdSource:
    include, exclude = CORP.scope(dc.base_dn)
    config = AdSource(
        name="corp",
        url=dc.ldaps_url,
        ca_file=str(dc.ca_file),
        bind_dn=dc.bind_dn,
        password_env=PASSWORD_ENV,
        base_dn=dc.base_dn,
        include_ous=include,
        exclude_ous=exclude,
        page_size=3,  # several pages
    )
    return replace(config, **changes)


def read_live(
    dc: DcInfo, config: AdSource, environ: dict[str, str] | None = None
) -> tuple[pl.DataFrame, SourceReport]:
    rows = AdRows()
    report = read_ad_ldap(
        config, rows, environ=dc.password_env(PASSWORD_ENV) if environ is None else environ
    )
    return rows.frame(), report


def ldapsearch_export(dc: DcInfo, config: AdSource, out: Path) -> Path:
    """What an operator would run: ldapsearch over LDAPS, verified, paged by 1000, the filter
    and attributes of the live read."""
    attributes = ldap_attributes(prepare_ad_source(config, config.name, None))
    env = {**os.environ, "LDAPTLS_CACERT": str(dc.ca_file), "LDAPTLS_REQCERT": "demand"}
    with out.open("wb") as ldif:
        subprocess.run(
            [
                "ldapsearch", "-LLL", "-x", "-H", dc.ldaps_url, "-D", dc.bind_dn,
                "-y", str(dc.password_file), "-b", config.base_dn, "-E", "pr=1000/noprompt",
                "-o", "ldif-wrap=no", PEOPLE_FILTER, *attributes,
            ],
            env=env, stdout=ldif, check=True,
        )  # fmt: skip
    return out


def by_dn(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("dn")


def test_live_frame_equals_the_import_of_an_ldapsearch_export(
    ad_dc: DcInfo, ad_seeded: list[Seeded], tmp_path: Path
) -> None:
    config = corp(ad_dc)
    started = time.perf_counter()
    live, report = read_live(ad_dc, config)
    seconds = time.perf_counter() - started
    export = ldapsearch_export(ad_dc, config, tmp_path / "ad.ldif")
    snapshot = import_files(ad=[("corp", export)], cloud=[], settings=Settings(ad=(config,)))
    assert_frame_equal(by_dn(live), by_dn(snapshot.ad_users))
    (imported,) = [s for s in snapshot.sources if s.kind == "ad"]
    assert (report.rows, dict(report.excluded)) == (imported.rows, dict(imported.excluded))
    assert report.complete and report.format == "ldap" and report.path == ad_dc.ldaps_url
    # every person seeded and nothing else (provisioning's users are critical system objects);
    # the people search leaves the computers out, so they are not counted
    assert sorted(live["dn"]) == sorted(s.dn for s in ad_seeded if s.user.excluded is None)
    assert dict(report.excluded) == {
        "critical-system-object": 4,
        "replication-conflict": 1,
        "cn-ends-with-$": 1,
        "system-account": 5,
    }
    # the pages and the reference to the Configuration partition, not followed
    assert any("pages of up to 3" in note for note in report.notes), report.notes
    assert any("continuation reference" in n and "CN=Configuration" in n for n in report.notes)
    print(f"\nlive read: {live.height} rows ({report.rows} kept) in {seconds:.3f} s")


def test_object_guid_and_anchor_of_every_seeded_user_are_what_samba_says(
    ad_dc: DcInfo, ad_seeded: list[Seeded]
) -> None:
    live, _ = read_live(ad_dc, corp(ad_dc))
    rows = {r["dn"].lower(): r for r in live.iter_rows(named=True)}
    samba = {u.dn.lower(): (u.object_guid, u.consistency_guid) for u in samba_users(ad_dc)}
    kept = [s for s in ad_seeded if s.user.excluded is None]
    assert sorted(rows) == sorted(s.dn.lower() for s in kept)
    for seeded in kept:
        guid, consistency = samba[seeded.dn.lower()]
        row = rows[seeded.dn.lower()]
        assert row["object_guid"] == str(guid), seeded.user.sam
        assert uuid.UUID(bytes_le=seeded.object_guid) == guid
        assert row["anchor"] == base64.b64encode(consistency or guid.bytes_le).decode()
        assert row["anchor_attribute"] == ("mS-DS-ConsistencyGuid" if consistency else "objectGUID")
        assert row["in_scope"] is CORP.in_scope(seeded.user), seeded.user.sam


def test_starttls_reads_the_same_frame(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    over_ldaps, _ = read_live(ad_dc, corp(ad_dc))
    over_starttls, report = read_live(ad_dc, corp(ad_dc, url=ad_dc.ldap_url, start_tls=True))
    assert_frame_equal(by_dn(over_ldaps), by_dn(over_starttls))
    assert report.path == ad_dc.ldap_url and not report.warnings


def test_password_file_and_base_dn_from_the_rootdse(
    ad_dc: DcInfo, ad_seeded: list[Seeded], tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(ad_dc.password() + "\n", encoding="utf-8")  # the newline is dropped
    config = corp(ad_dc, password_env="", password_file=str(secret), base_dn="", page_size=5000)
    frame, report = read_live(ad_dc, config, environ={})
    expected, _ = read_live(ad_dc, corp(ad_dc))
    assert_frame_equal(by_dn(frame), by_dn(expected))
    assert any(f"pages of up to 1000 under {ad_dc.base_dn}" in n for n in report.notes)


def test_tls_verify_false_reads_but_warns(ad_dc: DcInfo, ad_seeded: list[Seeded]) -> None:
    _, report = read_live(ad_dc, corp(ad_dc, ca_file="", tls_verify=False))
    assert report.rows > 0
    assert any("verification is OFF" in w for w in report.warnings), report.warnings


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory, ad_dc: DcInfo) -> Path:
    """A CA with the very subject name of the DC's CA that signed nothing of the DC's."""
    ca, _, _ = make_tls(tmp_path_factory.mktemp("stranger"), ad_dc.host, ad_dc.forest)
    return ca


def failure(dc: DcInfo, config: AdSource, environ: dict[str, str] | None = None) -> str:
    """The one line a bad config gives; the caller's rows untouched."""
    target = AdRows()
    environ = dc.password_env(PASSWORD_ENV) if environ is None else environ
    with pytest.raises(InputError) as raised:
        read_ad_ldap(config, target, environ=environ)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith(config.url), line
    assert dc.password() not in line
    assert not target.rows and not target.seen
    return line


def test_a_wrong_password_is_one_line_without_the_password(ad_dc: DcInfo) -> None:
    wrong = {PASSWORD_ENV: ad_dc.password() + "x"}
    line = failure(ad_dc, corp(ad_dc), environ=wrong)
    assert "invalidCredentials" in line and f"password_env {PASSWORD_ENV}" in line
    assert wrong[PASSWORD_ENV] not in line


def test_a_wrong_ca_is_one_line(ad_dc: DcInfo, stranger_ca: Path) -> None:
    line = failure(ad_dc, corp(ad_dc, ca_file=str(stranger_ca)))
    assert "not verified against ca_file" in line and str(stranger_ca) in line
    starttls = corp(ad_dc, ca_file=str(stranger_ca), url=ad_dc.ldap_url, start_tls=True)
    assert "StartTLS: the DC's certificate was not verified" in failure(ad_dc, starttls)


def test_a_bad_base_dn_is_one_line(ad_dc: DcInfo) -> None:
    base = f"OU=Nowhere,{ad_dc.base_dn}"
    line = failure(ad_dc, corp(ad_dc, base_dn=base))
    assert f"base_dn {base} does not exist" in line


def test_an_unreachable_host_is_one_line(ad_dc: DcInfo) -> None:
    line = failure(ad_dc, corp(ad_dc, url=f"ldaps://{ad_dc.host}:1"))
    assert "cannot connect" in line and "port 1 " in line


def test_plain_ldap_without_starttls_is_refused_before_connecting(ad_dc: DcInfo) -> None:
    line = failure(ad_dc, corp(ad_dc, url=ad_dc.ldap_url))
    assert "use ldaps:// or set start_tls = true" in line


def test_a_missing_password_variable_is_one_line(ad_dc: DcInfo) -> None:
    line = failure(ad_dc, corp(ad_dc), environ={})
    assert f"environment variable {PASSWORD_ENV} is not set" in line


@pytest.fixture
def proxy(ad_dc: DcInfo) -> Iterator[Relay]:
    relay = Relay(ad_dc)
    yield relay
    relay.close()


def test_a_hostname_the_certificate_does_not_name_is_one_line(ad_dc: DcInfo, proxy: Relay) -> None:
    line = failure(ad_dc, corp(ad_dc, url=f"ldaps://127.0.0.1:{proxy.port}"))
    assert "does not name 127.0.0.1 (hostname mismatch)" in line


def test_a_connection_lost_mid_search_raises_and_keeps_nothing(
    ad_dc: DcInfo, ad_seeded: list[Seeded], proxy: Relay
) -> None:
    config = corp(ad_dc, url=proxy.url, page_size=2)
    whole, _ = read_live(ad_dc, config)  # through the relay, uncut: it reads
    assert whole.height > 4
    for _ in range(200):  # the relay counts once its side of the connection has closed
        if proxy.from_dc:
            break
        time.sleep(0.01)
    proxy.fault(after=int(proxy.from_dc * 0.7))
    line = failure(ad_dc, config)
    assert " page " in line and "connection to the DC lost" in line, line
