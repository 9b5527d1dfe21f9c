"""The harness itself (issue 12 item 1): a real Samba AD DC that ldap3 reaches over LDAPS and
StartTLS with certificate verification on, that refuses what a hardened Windows DC refuses, and
whose objects read over LDAP agree with Samba's own ldbsearch."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.ad import samba_dc
from tests.ad.client import ldap3, ldaps, plain
from tests.ad.samba_dc import (
    FOREST_ONE,
    TEST_ADDRESSES,
    DcInfo,
    SambaDC,
    SambaError,
    make_tls,
    running_dc,
)

pytestmark = pytest.mark.ad


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory, ad_dc: DcInfo) -> Path:
    """A CA that signed nothing of the DC's, with the very same subject name as the DC's CA."""
    ca, _, _ = make_tls(tmp_path_factory.mktemp("stranger"), ad_dc.host, ad_dc.forest)
    return ca


def test_ldaps_bind_verified_against_the_test_ca(ad_dc: DcInfo) -> None:
    connection = ldaps(ad_dc)
    assert connection.bound
    assert connection.server.ssl
    connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["defaultNamingContext"])
    assert connection.response[0]["attributes"]["defaultNamingContext"] == [ad_dc.base_dn]
    connection.unbind()


def test_starttls_bind_verified_against_the_test_ca(ad_dc: DcInfo) -> None:
    connection = plain(ad_dc)
    connection.open()
    assert connection.start_tls()
    assert connection.bind(), connection.result
    connection.unbind()


def test_a_wrong_ca_fails_over_ldaps_and_starttls(ad_dc: DcInfo, stranger_ca: Path) -> None:
    exceptions = ldap3.core.exceptions
    with pytest.raises(exceptions.LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
        ldaps(ad_dc, ca_file=stranger_ca)
    connection = plain(ad_dc, ca_file=stranger_ca)
    connection.open()
    with pytest.raises(exceptions.LDAPStartTLSError, match="CERTIFICATE_VERIFY_FAILED"):
        connection.start_tls()


def test_a_plain_simple_bind_without_tls_is_refused(ad_dc: DcInfo) -> None:
    connection = plain(ad_dc)
    assert not connection.bind()
    assert connection.result["description"] == "strongerAuthRequired"


def test_a_wrong_password_is_refused(ad_dc: DcInfo) -> None:
    connection = ldaps(ad_dc, bind=False)
    connection.password = ad_dc.password() + "x"
    assert not connection.bind()
    assert connection.result["description"] == "invalidCredentials"


def test_administrator_guid_over_ldap_is_what_ldbsearch_says(ad_dc: DcInfo) -> None:
    connection = ldaps(ad_dc)
    connection.search(ad_dc.base_dn, "(sAMAccountName=Administrator)", attributes=["objectGUID"])
    (entry,) = [r for r in connection.response if r["type"] == "searchResEntry"]
    assert entry["dn"].lower() == ad_dc.bind_dn.lower()
    raw = entry["raw_attributes"]["objectGUID"][0]
    assert isinstance(raw, bytes) and len(raw) == 16
    assert uuid.UUID(bytes_le=raw) == ldbsearch_guid(ad_dc, "(sAMAccountName=Administrator)")


def test_two_forests_side_by_side(ad_forests: tuple[DcInfo, DcInfo]) -> None:
    one, two = ad_forests
    assert (one.host, one.base_dn) != (two.host, two.base_dn)
    guids = []
    for dc in ad_forests:
        connection = ldaps(dc)
        connection.search(dc.base_dn, "(sAMAccountName=Administrator)", attributes=["objectGUID"])
        guids.append(connection.response[0]["raw_attributes"]["objectGUID"][0])
        assert connection.response[0]["dn"].lower().endswith(dc.base_dn.lower())
    assert guids[0] != guids[1]
    # each DC's certificate is its own CA's: the other forest's CA does not verify it
    with pytest.raises(ldap3.core.exceptions.LDAPSocketOpenError):
        ldaps(one, ca_file=two.ca_file)


def test_running_dc_stops_its_own_pid_when_the_body_fails(tmp_path: Path) -> None:
    pid = None
    with (
        pytest.raises(RuntimeError, match="body failed"),
        running_dc(tmp_path / "dc", TEST_ADDRESSES[2], FOREST_ONE) as info,
    ):
        pid = info.pid
        assert pid is not None and _alive(pid)
        raise RuntimeError("body failed")
    assert pid is not None and not _alive(pid)


def test_provisioning_into_a_used_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(SambaError, match="is not empty"):
        SambaDC(tmp_path, TEST_ADDRESSES[2]).provision()


def ldbsearch_guid(dc: DcInfo, ldap_filter: str) -> uuid.UUID:
    """Samba's own view, straight from sam.ldb (LMDB allows a reader beside the running DC)."""
    out = subprocess.run(
        [
            "ldbsearch", "-H", str(dc.directory / "private" / "sam.ldb"),
            f"--configfile={dc.directory / 'etc' / 'smb.conf'}",
            "-b", dc.base_dn, ldap_filter, "objectGUID",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (line,) = [x for x in out.splitlines() if x.startswith("objectGUID: ")]
    return uuid.UUID(line.removeprefix("objectGUID: "))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # reaped by Popen.wait in stop(); a zombie would still answer signal 0
    return True


def test_missing_packages_without_root_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samba_dc, "missing_packages", lambda: ["samba-ad-dc", "ldb-tools"])
    monkeypatch.setattr(samba_dc.os, "geteuid", lambda: 1000)
    with pytest.raises(SambaError) as raised:
        samba_dc.ensure_packages()
    assert str(raised.value) == (
        "missing Debian packages; run: sudo apt-get install samba-ad-dc ldb-tools"
    )
