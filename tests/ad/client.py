"""ldap3 connections to a test DC, with certificate verification on (the CA of the DC's own
directory unless another is given). ldap3 is imported here, guarded: while it is missing from
requirements.lock the `ad` tests fail with one line (tests/ad/conftest.py) instead of the whole
collection stopping on an ImportError."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from tests.ad.samba_dc import DcInfo

try:
    import ldap3
except ImportError:  # reported by the _needs_ldap3 fixture
    ldap3 = None

LDAP3_MISSING = (
    "ldap3 is not installed: add it to pyproject.toml's dependencies and run ./dev lock "
    "(requirements.lock), then ./dev test installs it"
)


def tls(ca_file: Path) -> Any:
    return ldap3.Tls(
        ca_certs_file=str(ca_file), validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT
    )


def ldaps(dc: DcInfo, *, ca_file: Path | None = None, bind: bool = True) -> Any:
    """A connection over LDAPS (636), bound as the Administrator unless bind is False."""
    server = ldap3.Server(
        dc.host,
        port=dc.ldaps_port,
        use_ssl=True,
        tls=tls(ca_file or dc.ca_file),
        get_info=ldap3.NONE,
    )
    connection = ldap3.Connection(server, user=dc.bind_dn, password=dc.password())
    if bind:
        connection.open()
        if not connection.bind():
            raise AssertionError(f"LDAPS bind to {dc.ldaps_url} failed: {connection.result}")
    return connection


def plain(dc: DcInfo, *, ca_file: Path | None = None) -> Any:
    """An unbound, unencrypted connection to 389 (StartTLS verifies against ca_file)."""
    server = ldap3.Server(
        dc.host, port=dc.ldap_port, tls=tls(ca_file or dc.ca_file), get_info=ldap3.NONE
    )
    return ldap3.Connection(server, user=dc.bind_dn, password=dc.password())
