"""A live read of one ``[[ad]]`` source over LDAP (issue 12 item 3): ldap3, TLS always, the
password never in any message, and the records through the same door as an LDIF file
(:func:`audit.sources.ad.map_ad_records`, one page being a record's position).

- Transport: ``ldaps://`` or ``ldap://`` with ``start_tls = true``; a plain simple bind is
  refused before anything is sent (it would put the password on the wire). The certificate is
  verified by default against ``ca_file`` (else the system's CAs), hostname included;
  ``tls_verify = false`` turns that off and says so in the report's warnings on every read.
- Bind: simple, as ``bind_dn``, with the password from ``password_env`` (a variable's name) or
  ``password_file`` (its trailing newline dropped).
- Search: people only (the README's ldifde filter), under ``base_dn`` (the DC's
  defaultNamingContext when empty), every user kept (sync scope is judged on the records, so
  out-of-scope users keep their anchors), paged at min(page_size, 1000) (Windows' MaxPageSize;
  Samba does not enforce it), the attributes of :attr:`AdReading.wanted` that LDAP has, raw
  values: binary attributes stay bytes, text is decoded as UTF-8 like an LDIF's base64 values.
- Referrals and continuation references are never chased (ldap3 would bind to the host they
  name with the same credentials): a referral for the base is an error, continuation
  references are counted and named in the report's notes.
- Complete or nothing: any failure raises one-line :class:`InputError` naming the URL (and
  the page), and the rows of this source reach the caller's :class:`AdRows` only once every
  page was read.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_errors

from audit.config import AdSource
from audit.errors import InputError, Origin, short
from audit.model import SourceReport
from audit.sources.ad import AdReading, AdRows, map_ad_records, prepare_ad_source
from audit.sources.detect import Notes
from audit.sources.ldap_pages import SearchTally, scrub_password, search_records
from audit.sources.raw_ldif import captured, raw_capture
from audit.sources.records import Record, text_of
from audit.sources.secrets import read_secret

# Windows' default MaxPageSize (LDAP policies, KB 315071: "View and set LDAP policy in Active
# Directory by using Ntdsutil.exe", learn.microsoft.com/troubleshoot/windows-server/
# active-directory/view-set-ldap-policy-using-ntdsutil): a larger page is cut to it.
MAX_PAGE_SIZE = 1000
CONNECT_TIMEOUT = 15  # seconds to open the TCP connection
RECEIVE_TIMEOUT = 300  # seconds without a byte from the DC before a page is given up

# Get-ADUser properties in AdReading.wanted (file readers accept them); LDAP has no such
# attribute, so a live read does not ask for them.
NOT_LDAP = frozenset({"enabled", "lastlogondate"})
# How AD spells the attributes it is asked for (LDAP names are case-insensitive: only for
# readable requests and logs). Names not listed are asked for as configured, lower case.
LDAP_NAMES = {
    name.lower(): name
    for name in (
        "objectGUID",
        "mS-DS-ConsistencyGuid",
        "msDS-SourceAnchor",
        "sAMAccountName",
        "userPrincipalName",
        "mail",
        "mailNickname",
        "proxyAddresses",
        "targetAddress",
        "msExchRecipientTypeDetails",
        "displayName",
        "givenName",
        "sn",
        "employeeID",
        "employeeNumber",
        "userAccountControl",
        "objectSid",
        "whenCreated",
        "whenChanged",
        "lastLogon",
        "lastLogonTimestamp",
        "isCriticalSystemObject",
        "objectClass",
        "objectCategory",
        "cn",
        "name",
    )
}
# AD's bind error data codes (the "data 52e" in the diagnostic message of invalidCredentials):
# Win32 system error codes in hex, named on Microsoft's "System Error Codes" pages:
# 0x525 ERROR_NO_SUCH_USER, 0x52E ERROR_LOGON_FAILURE, 0x530 ERROR_INVALID_LOGON_HOURS,
# 0x531 ERROR_INVALID_WORKSTATION, 0x532 ERROR_PASSWORD_EXPIRED, 0x533 ERROR_ACCOUNT_DISABLED
# (https://learn.microsoft.com/windows/win32/debug/system-error-codes--1300-1699-);
# 0x701 ERROR_ACCOUNT_EXPIRED, 0x773 ERROR_PASSWORD_MUST_CHANGE, 0x775 ERROR_ACCOUNT_LOCKED_OUT
# (https://learn.microsoft.com/windows/win32/debug/system-error-codes--1700-3999-).
_BIND_DATA = {
    "525": "the bind DN names no user",
    "52e": "wrong password or bind DN",
    "530": "the account may not log on at this time",
    "531": "the account may not log on from this workstation",
    "532": "the account's password has expired",
    "533": "the account is disabled",
    "701": "the account has expired",
    "773": "the account must change its password first",
    "775": "the account is locked out",
}
_BIND_DATA_RE = re.compile(r"\bdata ([0-9a-f]{3,4})\b", re.IGNORECASE)
_VERIFY_RE = re.compile(r"certificate verify failed: ([^(']+)", re.IGNORECASE)
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\"\])]+)")
_WRAP_RE = re.compile(r"socket ssl wrapping error: (?:\[[^]]*\] )?([^('\"]+)")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, from an [[ad]] table's url and start_tls."""

    url: str
    host: str
    port: int
    use_ssl: bool  # ldaps://
    start_tls: bool  # ldap:// upgraded before the bind


def ldap_attributes(reading: AdReading) -> list[str]:
    """The attributes a live read asks for: AdReading.wanted that LDAP has, spelt as AD does.
    An `ldapsearch` export with the same list reads to the same frame (tests/ad)."""
    return sorted(LDAP_NAMES.get(name, name) for name in reading.wanted - NOT_LDAP)


def page_size_of(config: AdSource, endpoint: Endpoint) -> int:
    if config.page_size < 1:
        raise InputError(Origin(endpoint.url), f"[[ad]] {config.name}: page_size must be 1 or more")
    return min(config.page_size, MAX_PAGE_SIZE)


def endpoint_of(config: AdSource) -> Endpoint:
    """The url checked: ldaps://host[:port], or ldap://host[:port] with start_tls = true."""
    url = config.url.strip()
    if not url:
        raise InputError("<config>", f"[[ad]] {config.name}: url is empty: give ldaps://<dc>")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise InputError(Origin(url), "the port is not a number") from None
    if scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise InputError(Origin(url), "url must be ldaps://<dc>[:port] or ldap://<dc>[:port]")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise InputError(
            Origin(url), "url must name only the DC: put the search base in base_dn, not the url"
        )
    if scheme == "ldaps" and config.start_tls:
        raise InputError(
            Origin(url), "start_tls = true is for ldap:// urls: ldaps:// is TLS already"
        )
    if scheme == "ldap" and not config.start_tls:
        raise InputError(
            Origin(url),
            "a simple bind over plain ldap:// would send the password in clear text: use "
            "ldaps:// or set start_tls = true",
        )
    return Endpoint(
        url=url,
        host=parts.hostname,
        port=port or (636 if scheme == "ldaps" else 389),
        use_ssl=scheme == "ldaps",
        start_tls=scheme == "ldap",
    )


def bind_password(config: AdSource, endpoint: Endpoint, environ: Mapping[str, str]) -> str:
    """The bind password from password_env or password_file, never echoed."""
    return read_secret(
        Origin(endpoint.url),
        env_key="password_env",
        env_name=config.password_env,
        file_key="password_file",
        file_name=config.password_file,
        environ=environ,
        what="the bind password",
        missing=f"[[ad]] {config.name}: no password_env or password_file: say where the bind "
        "password is",
    )


def tls_of(config: AdSource, endpoint: Endpoint) -> Any:
    """ldap3's Tls: CERT_REQUIRED against ca_file (or the system's CAs), hostname checked by
    ldap3 after the handshake; CERT_NONE only with tls_verify = false."""
    if not config.tls_verify:
        return ldap3.Tls(validate=ssl.CERT_NONE, version=ssl.PROTOCOL_TLS_CLIENT)
    ca_file = None
    if config.ca_file:
        path = Path(config.ca_file).expanduser()
        if not path.is_file():
            raise InputError(
                Origin(endpoint.url), f"ca_file {path} does not exist or is not a file"
            )
        ca_file = str(path)
    return ldap3.Tls(
        ca_certs_file=ca_file, validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT
    )


@dataclass(frozen=True)
class ReadPolicy:
    """How hard a read tries. A lost connection, a DC restarting, a timeout or a busy DC is
    tried again from the first page (a paged-search cookie dies with its connection) after
    each delay of `backoff`, then the read fails; what the operator must fix (a password, a
    CA, a base DN) fails at once. One attempt unless the caller asks for more."""

    attempts: int = 1
    backoff: tuple[float, ...] = ()  # seconds before attempt 2, 3, 4... (the last repeats)
    # whole seconds: ldap3 fails on a float in either ("required argument is not an integer")
    connect_timeout: int = CONNECT_TIMEOUT
    receive_timeout: int = RECEIVE_TIMEOUT

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        return self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else 0.0

    @classmethod
    def of(cls, config: AdSource) -> ReadPolicy:
        """An [[ad]] table's attempts, retry_wait (doubling) and timeout: by default 5
        attempts over 75 s (5 + 10 + 20 + 40), patience for a DC that restarts."""
        waits = tuple(config.retry_wait * 2**n for n in range(max(config.attempts - 1, 0)))
        return cls(
            attempts=config.attempts,
            backoff=waits,
            connect_timeout=min(CONNECT_TIMEOUT, config.timeout),
            receive_timeout=config.timeout,
        )


ONE_ATTEMPT = ReadPolicy()


@dataclass(frozen=True)
class ReadProgress:
    """Where one source's read stands, after each page."""

    source: str
    objects: int
    pages: int
    seconds: float
    attempt: int
    finished: bool = False  # every page read

    @property
    def rate(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


class TransientError(InputError):
    """A failure another attempt may not meet: the connection, not the configuration."""


# Result codes a DC gives when it cannot serve now, not because the request is wrong:
# busy (51; a DC at an LDAP policy limit such as MaxNotificationPerConnection answers "busy",
# KB 315071 above), unavailable (52); RFC 4511 section 4.1.9.
_TRANSIENT_RESULTS = frozenset({51, 52})


def read_ad_ldap(
    config: AdSource,
    target: AdRows,
    *,
    source: str | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    policy: ReadPolicy = ONE_ATTEMPT,
    raw_ldif: Path | None = None,
    progress: Callable[[ReadProgress], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SourceReport:
    """Read one [[ad]] source live into `target` and return its SourceReport (as the file
    reader does for an export). Raises InputError, with nothing added to `target` and no
    `raw_ldif` written, when any step fails: connect, TLS, bind, any page of the search.

    `raw_ldif`: where the records read go, in ``ldapsearch -LLL`` form (raw_ldif.py).
    `on_retry`: one line per failed attempt that will be tried again, for the operator."""
    reading = prepare_ad_source(config, source or config.name, config_path)
    endpoint = endpoint_of(config)
    size = page_size_of(config, endpoint)
    if not config.bind_dn:
        raise InputError(
            Origin(endpoint.url),
            f"[[ad]] {config.name}: bind_dn is empty: give the DN (or UPN) to bind as",
        )
    password = bind_password(config, endpoint, os.environ if environ is None else environ)
    tls = tls_of(config, endpoint)
    failures: list[str] = []
    attempt = 1
    while True:
        try:
            rows, report = read_once(
                config, reading, endpoint, tls, password, size, policy, raw_ldif, attempt,
                progress,
            )  # fmt: skip
            break
        except TransientError as error:
            if attempt >= policy.attempts:
                if attempt == 1:
                    raise
                raise InputError(
                    error.origin,
                    f"{error.reason} (gave up after {attempt} attempts): nothing of this source "
                    "was kept",
                ) from None
            wait = policy.delay(attempt)
            failures.append(f"attempt {attempt}: {error.reason}")
            if on_retry is not None:
                on_retry(
                    f"{reading.source}: attempt {attempt} of {policy.attempts} failed "
                    f"({error.reason}); trying again in {wait:g} s"
                )
            sleep(wait)
            attempt += 1
    target.merge(rows)
    if failures:
        report = replace(
            report,
            notes=(
                *report.notes,
                f"read completely on attempt {attempt} of {policy.attempts} (after "
                f"{'; '.join(failures)})",
            ),
        )
    return report


def read_once(
    config: AdSource,
    reading: AdReading,
    endpoint: Endpoint,
    tls: Any,
    password: str,
    size: int,
    policy: ReadPolicy,
    raw_ldif: Path | None,
    attempt: int,
    progress: Callable[[ReadProgress], None] | None,
) -> tuple[AdRows, SourceReport]:
    """One attempt: this source's rows (not yet handed over) and its report."""
    notes = Notes()
    if not config.tls_verify:
        notes.add(
            f"TLS certificate verification is OFF for {endpoint.url} (tls_verify = false): "
            "whoever answers there gets the bind password; set ca_file and remove tls_verify"
        )
    connection = connect(config, endpoint, tls, password, policy)
    started = time.monotonic()
    tally = SearchTally()
    rows = AdRows()
    attributes = ldap_attributes(reading)
    spelling = {name.lower(): name for name in attributes}
    try:
        base = config.base_dn or default_naming_context(connection, endpoint, password)
        with raw_capture(raw_ldif) if raw_ldif is not None else contextlib.nullcontext() as out:
            records = search_records(
                connection, endpoint.url, base, attributes, reading.binary, size, tally, password
            )
            if progress is not None:
                records = reported(records, tally, reading.source, started, attempt, progress)
            report = map_ad_records(
                captured(records, out, spelling),
                reading,
                where=endpoint.url,
                fmt="ldap",
                notes=notes,
                target=rows,
                raw_text_is_bytes=False,
                position="page",
            )
    except InputError as error:
        if isinstance(error, TransientError) or _lost(connection):
            raise TransientError(error.origin, error.reason) from None
        raise
    finally:
        _unbind(connection)
    read_notes = [f"{tally.entries} objects in {tally.pages} pages of up to {size} under {base}"]
    if tally.references:
        shown = ", ".join(tally.references[:5])
        more = f" and {len(tally.references) - 5} more" if len(tally.references) > 5 else ""
        read_notes.append(
            f"{len(tally.references)} continuation reference"
            f"{'s' if len(tally.references) > 1 else ''} not followed (never chased): "
            f"{shown}{more}"
        )
    return rows, replace(report, notes=(*report.notes, *read_notes))


def reported(
    records: Iterator[Record],
    tally: SearchTally,
    source: str,
    started: float,
    attempt: int,
    progress: Callable[[ReadProgress], None],
) -> Iterator[Record]:
    """`records`, calling `progress` each time a page has been read through (the first
    record of the next page shows it), and at the end."""
    pages = 1
    for record in records:
        if tally.pages != pages:
            pages = tally.pages
            done = tally.entries - 1  # this record opens the next page
            seconds = time.monotonic() - started
            progress(ReadProgress(source, done, pages - 1, seconds, attempt))
        yield record
    seconds = time.monotonic() - started
    progress(ReadProgress(source, tally.entries, tally.pages, seconds, attempt, finished=True))


def _lost(connection: Any) -> bool:
    """Whether a failed search lost its connection (or the DC said it cannot serve now)."""
    result = connection.result or {}
    return bool(connection.closed) or result.get("result") in _TRANSIENT_RESULTS


def connect(
    config: AdSource, endpoint: Endpoint, tls: Any, password: str, policy: ReadPolicy
) -> Any:
    """An open, TLS-protected, bound connection, or InputError saying what to fix."""
    server = ldap3.Server(
        endpoint.host,
        port=endpoint.port,
        use_ssl=endpoint.use_ssl,
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=policy.connect_timeout,
    )
    connection = ldap3.Connection(
        server,
        user=config.bind_dn,
        password=password,
        authentication=ldap3.SIMPLE,
        auto_referrals=False,  # never bind with these credentials to a host a DC names
        raise_exceptions=False,
        read_only=True,
        receive_timeout=policy.receive_timeout,
        return_empty_attributes=False,
    )
    try:
        connection.open()
        if endpoint.start_tls and not connection.start_tls():
            _unbind(connection)
            raise InputError(
                Origin(endpoint.url),
                f"StartTLS refused ({_result_text(connection.result, password)}): use ldaps://",
            )
        if not connection.bind():
            result = connection.result or {}
            _unbind(connection)
            busy = result.get("result") in _TRANSIENT_RESULTS
            kind = TransientError if busy else InputError
            raise kind(Origin(endpoint.url), bind_refusal(config, result, password))
    except (ldap_errors.LDAPException, OSError) as exc:
        _unbind(connection)
        why = connect_failure(exc, config, endpoint, password)
        # the DC not answering (down, restarting): worth another attempt; TLS failures are not
        kind = TransientError if why.startswith("cannot connect") else InputError
        raise kind(Origin(endpoint.url), why) from None
    return connection


def connect_failure(exc: BaseException, config: AdSource, endpoint: Endpoint, password: str) -> str:
    """One line for an exception while connecting: what went wrong and what to fix."""
    text = scrub_password(str(exc), password)
    step = "StartTLS" if isinstance(exc, ldap_errors.LDAPStartTLSError) else "TLS"
    verify = _VERIFY_RE.search(text)
    if verify or "CERTIFICATE_VERIFY_FAILED" in text:
        why = verify.group(1).strip() if verify else "certificate verify failed"
        against = f"ca_file {config.ca_file}" if config.ca_file else "the system's CAs"
        return (
            f"{step}: the DC's certificate was not verified against {against} ({why}): set "
            "ca_file to the CA that issued the DC's certificate"
        )
    if isinstance(exc, ldap_errors.LDAPCertificateError) or "doesn't match any name" in text:
        return (
            f"{step}: the DC's certificate does not name {endpoint.host} (hostname mismatch): "
            "put a name the certificate has (its subjectAltName) in url, or reissue it"
        )
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return f"StartTLS failed ({short(text)}): check the DC's TLS setup, or use ldaps://"
    if isinstance(exc, ldap_errors.LDAPSocketOpenError | OSError):
        errno = _ERRNO_RE.search(text)
        wrap = _WRAP_RE.search(text)
        why = (
            errno.group(1).strip()
            if errno
            else f"TLS handshake cut: {wrap.group(1).strip()}"
            if wrap
            else short(text)
        )
        return (
            f"cannot connect to {endpoint.host} port {endpoint.port} ({why}): check the url, "
            "that the DC is up and that this port is open from here"
        )
    return f"connecting failed ({type(exc).__name__}: {short(text)})"


def bind_refusal(config: AdSource, result: Mapping[str, Any] | None, password: str) -> str:
    result = result or {}
    description = str(result.get("description") or "no answer")
    message = scrub_password(str(result.get("message") or ""), password)
    where = (
        f"password_env {config.password_env}"
        if config.password_env
        else f"password_file {config.password_file}"
    )
    if description == "invalidCredentials":
        data = _BIND_DATA_RE.search(message)
        why = _BIND_DATA.get(data.group(1).lower(), "") if data else ""
        why = why or "wrong password or bind DN"
        return (
            f"bind as {config.bind_dn} refused (invalidCredentials: {why}): check bind_dn and "
            f"the password in {where}"
        )
    detail = f": {short(message)}" if message else ""
    return f"bind as {config.bind_dn} refused ({description}{detail})"


def default_naming_context(connection: Any, endpoint: Endpoint, password: str) -> str:
    """base_dn when none is configured: the domain the DC holds (its rootDSE says which)."""
    try:
        connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["defaultNamingContext"])
        entries = [e for e in connection.response or () if e.get("type") == "searchResEntry"]
    except (ldap_errors.LDAPException, OSError) as exc:
        raise InputError(
            Origin(endpoint.url),
            f"reading the rootDSE failed ({short(scrub_password(str(exc), password))})",
        ) from None
    values = entries[0].get("raw_attributes", {}).get("defaultNamingContext") if entries else None
    if not values:
        raise InputError(Origin(endpoint.url), "the DC names no defaultNamingContext: set base_dn")
    return text_of(values[0])


def _result_text(result: Mapping[str, Any] | None, password: str) -> str:
    result = result or {}
    message = scrub_password(str(result.get("message") or ""), password)
    description = str(result.get("description") or "no answer")
    return f"{description}: {short(message)}" if message else description


def _unbind(connection: Any) -> None:
    with contextlib.suppress(ldap_errors.LDAPException, OSError):
        connection.unbind()
