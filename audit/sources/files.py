"""Snapshot from exported files: LDIF / CSV of AD, Graph JSON / CSV of Entra (``syncaudit import``).

Formats are recognised by content (see :mod:`audit.sources.detect`). Any malformed input raises
:class:`InputError` before a Snapshot exists: there is never a partial snapshot.

Which AD objects become ``ad_users`` rows:

- computers (objectClass computer or objectCategory Computer) and non-user objects are not
  people: dropped, counted in the source report's ``excluded`` ("computer", "not-a-user");
- accounts IdFix skips (FACTS.md section 4) are dropped and counted by reason:
  "replication-conflict" (``\\0ACNF:`` in the DN), "critical-system-object"
  (isCriticalSystemObject TRUE), "cn-ends-with-$", "system-account" (built-in cn prefixes);
- users outside the source's sync scope (OUs, filter) are KEPT with ``in_scope`` false and an
  ``out_of_scope_reason``: an out-of-scope user still holds its anchor, and the rules must be
  able to say so (cloud-orphan).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit.config import AdSource, Settings
from audit.model import (
    AD_USERS_SCHEMA,
    CLOUD_OBJECTS_SCHEMA,
    CLOUD_USERS_SCHEMA,
    Domain,
    Snapshot,
    SourceReport,
    Tenant,
    conform,
    empty_frame,
)
from audit.scope import FilterError, Scope, scope_for
from audit.sources import csvfile, entra_roles, graphjson
from audit.sources.detect import (
    InputError,
    Notes,
    TextInput,
    bool_from_text,
    datetime_from_filetime,
    datetime_from_text,
    read_input,
)
from audit.sources.ldif import BINARY_ATTRIBUTES, Record, Value, ldif_records

__all__ = ["InputError", "import_files"]

CONSISTENCY_GUID = "mS-DS-ConsistencyGuid"
# Anchor attributes that hold text (msDS-SourceAnchor stores the anchor string itself).
TEXT_ANCHOR_ATTRIBUTES = frozenset({"employeeid", "msds-sourceanchor", "employeenumber", "mail"})
OBJECT_GUID = "objectGUID"

# The attributes the ad_users frame is built from (lower-case LDAP names, plus the Get-ADUser
# properties that stand in for them).
AD_ATTRIBUTES = frozenset(
    {
        "objectguid",
        "ms-ds-consistencyguid",
        "samaccountname",
        "userprincipalname",
        "mail",
        "mailnickname",
        "proxyaddresses",
        "targetaddress",
        "msexchrecipienttypedetails",
        "displayname",
        "givenname",
        "sn",
        "employeeid",
        "useraccountcontrol",
        "enabled",
        "objectsid",
        "whencreated",
        "whenchanged",
        "lastlogon",
        "lastlogontimestamp",
        "lastlogondate",
        "iscriticalsystemobject",
        "objectclass",
        "objectcategory",
        "cn",
        "name",
    }
)
# IdFix's skip list (src/IdFix: built-in and Exchange system accounts), made exact: IdFix
# matches bare cn prefixes ("guest", "iwam", "msol", "admini") only to quiet its own report,
# but here a skipped object leaves the whole estate, and those prefixes also catch people
# (Iwamoto, "Guest, Amanda", Msoliman, Adminian). The built-in Administrator, Guest and
# krbtgt also carry isCriticalSystemObject.
SYSTEM_CN_NAMES = frozenset({"administrator", "guest", "krbtgt"})
SYSTEM_CN_PREFIXES = (
    "cas_{",
    "discoverysearchmailbox",
    "federatedemail.",
    "httpconnector",
    "iusr_",
    "iwam_",
    "msol_",
    "support_",
    "systemmailbox{",
    "wwioadmini",
    "healthmailbox",
)
# Attributes the rules judge by that an export may leave out (a hand-made ldifde -l list, a
# Get-ADUser -Properties without them): when no user at all has one, the import says what
# cannot be judged instead of reporting everyone as clean. The README's ldifde command asks for
# all of them.
NOT_EXPORTED = {
    "mail": (
        "no user has mail: if the export left it out, mail duplicates and conflicts with cloud "
        "objects and the mail checks of invalid-attribute cannot be judged; export mail"
    ),
    "proxyaddresses": (
        "no user has proxyAddresses: if the export left it out, soft match on the primary SMTP "
        "address (soft-match-pending/-blocked, unmatched-ad), address duplicates and conflicts, "
        "and the proxyAddresses checks of invalid-attribute cannot be judged; export "
        "proxyAddresses"
    ),
    "ms-ds-consistencyguid": (
        "no user has mS-DS-ConsistencyGuid: if the export left it out, every anchor falls back "
        "to objectGUID, so users whose ConsistencyGuid differs (migrated, restamped) are matched "
        "wrongly and consistency-guid-invalid/-differs cannot be judged; export "
        "mS-DS-ConsistencyGuid"
    ),
    "useraccountcontrol": (
        "no user has userAccountControl: enabled states are unknown, so enabled-drift and "
        "unmatched-ad judge nobody; export userAccountControl"
    ),
}
_ALSO_ACCEPTED = {"useraccountcontrol": "enabled"}  # Get-ADUser's Enabled property
_GUID_TEXT_RE = re.compile(
    r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$"
)
_DECIMAL_BYTES_RE = re.compile(r"^\d{1,3}(?:[ ,;]+\d{1,3})*$")
# Text columns in AD_USERS_SCHEMA order: 4 before proxy_addresses, 4 after primary_smtp.
_TEXT_ATTRIBUTES = (
    "samaccountname",
    "userprincipalname",
    "mail",
    "mailnickname",
    "displayname",
    "givenname",
    "sn",
    "employeeid",
)


def import_files(
    *,
    ad: Sequence[tuple[str | None, Path]],
    cloud: Sequence[Path],
    deleted: Path | None = None,
    domains: Path | None = None,
    tenant: Path | None = None,
    roles: Sequence[Path] = (),
    settings: Settings,
    taken_at: str | None = None,
) -> Snapshot:
    """Read every export into one Snapshot, or raise InputError naming the file and line."""
    taken = _taken_at(taken_at)
    reports: list[SourceReport] = []
    ad_rows = AdRows()
    for name, path in ad:
        reports.append(read_ad_file(Path(path), name, settings, ad_rows))
    users = graphjson.CloudUsers()
    reports.extend(read_cloud_files([Path(p) for p in cloud], users, taken, deleted=False))
    if deleted is not None:
        reports.extend(read_cloud_files([Path(deleted)], users, taken, deleted=True))
    tenant_info, tenant_reports = read_tenant(domains, tenant, settings)
    reports.extend(tenant_reports)
    cloud_frame = cloud_users_frame(users)
    if roles:
        cloud_frame, role_reports = with_roles(cloud_frame, [Path(p) for p in roles])
        reports.extend(role_reports)
    ad_frame, ad_clipped = clip_long_values(ad_rows.frame(), "dn")
    cloud_frame, cloud_clipped = clip_long_values(cloud_frame, "id")
    reports = with_warnings(reports, "ad", ad_clipped)
    reports = with_warnings(reports, "cloud", cloud_clipped)
    return Snapshot(
        ad_users=ad_frame,
        cloud_users=cloud_frame,
        tenant=tenant_info,
        cloud_objects=cloud_objects_frame(users),
        sources=tuple(empty_side_is_incomplete(reports)),
        taken_at=taken.isoformat().replace("+00:00", "Z"),
    )


# No directory value the rules look at comes near this (AD's longest common string attributes:
# displayName 256, proxyAddresses 1123, description 1024); a value of megabytes is a broken or
# hostile export, and would cost minutes and gigabytes in the rules and reports.
MAX_VALUE_CHARS = 4096


def clip_long_values(frame: pl.DataFrame, key: str) -> tuple[pl.DataFrame, list[str]]:
    """Every text value (and list element) cut to MAX_VALUE_CHARS, with one warning per column
    naming how many were cut and the object with the longest."""
    warnings: list[str] = []
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            length = pl.col(name).str.len_chars()
            clipped = pl.col(name).str.slice(0, MAX_VALUE_CHARS)
        elif dtype == pl.List(pl.String):
            length = pl.col(name).list.eval(pl.element().str.len_chars()).list.max()
            clipped = pl.col(name).list.eval(pl.element().str.slice(0, MAX_VALUE_CHARS))
        else:
            continue
        too_long = frame.select((length > MAX_VALUE_CHARS).fill_null(False)).to_series()
        if not too_long.any():
            continue
        worst = frame.filter(too_long).select(pl.col(key), length.alias("n")).sort("n").row(-1)
        who = str(worst[0])
        who = who if len(who) <= 200 else who[:200] + "..."  # the key may be the long value
        count = int(too_long.sum())
        warnings.append(
            f"{count} {name} {'value' if count == 1 else 'values'} longer than "
            f"{MAX_VALUE_CHARS:,} characters were cut to that length (the longest, "
            f"{worst[1]:,} characters, on {who})"
        )
        exprs.append(clipped.alias(name))
    return (frame.with_columns(exprs) if exprs else frame), warnings


def with_warnings(
    reports: list[SourceReport], kind: str, warnings: list[str]
) -> list[SourceReport]:
    """The warnings added to the first report of that kind (the side's values are merged)."""
    if not warnings:
        return reports
    for i, report in enumerate(reports):
        if report.kind == kind:
            updated = replace(report, warnings=(*report.warnings, *warnings))
            return [*reports[:i], updated, *reports[i + 1 :]]
    return reports


def empty_side_is_incomplete(reports: list[SourceReport]) -> list[SourceReport]:
    """An AD side without a single person, or a tenant without a single active user, is a
    wrong or cut export, not an estate: judged as complete, it would make every object of the
    other side an orphan or unmatched. Such sources are marked incomplete, with a warning."""
    why = {
        "ad": "no AD users at all: a wrong or cut export? treated as incomplete",
        "cloud": "no cloud users at all (a tenant has at least its admin): treated as incomplete",
    }
    empty = {
        kind
        for kind in why
        if any(r.kind == kind for r in reports)
        and sum(r.rows for r in reports if r.kind == kind) == 0
    }
    return [
        replace(r, complete=False, warnings=(*r.warnings, why[r.kind])) if r.kind in empty else r
        for r in reports
    ]


def _taken_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    parsed = datetime_from_text(text)
    if parsed is None:
        raise InputError("taken_at", f"not an ISO 8601 time: {text!r}")
    return parsed


# --- AD ---------------------------------------------------------------------------------------


@dataclass
class AdRows:
    """ad_users rows of every AD input, as tuples in AD_USERS_SCHEMA order."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    seen: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)

    def frame(self) -> pl.DataFrame:
        if not self.rows:
            return empty_frame(AD_USERS_SCHEMA)
        columns = list(zip(*self.rows, strict=True))
        data: dict[str, Any] = {name: columns[i] for i, name in enumerate(AD_USERS_SCHEMA)}
        proxies = data.pop("proxy_addresses")
        schema = {k: v for k, v in AD_USERS_SCHEMA.items() if k in data}
        frame = pl.DataFrame(data, schema=schema).with_columns(
            split_lists("proxy_addresses", proxies)
        )
        return conform(frame, AD_USERS_SCHEMA)


def joined_list(values: Sequence[str]) -> str:
    """A list kept as one NUL-joined string until the frame is built: far faster in Polars than
    converting Python lists one by one, and rows of plain strings cost the GC nothing.
    Inputs with NUL are rejected, so only a decoded base64 value could hold one."""
    joined = "\x00".join(values)
    if values and joined.count("\x00") != len(values) - 1:
        joined = "\x00".join(v.replace("\x00", "\ufffd") for v in values)
    return joined


def split_lists(name: str, joined: Sequence[str]) -> pl.Series:
    series = pl.Series(name, joined, dtype=pl.String())
    return pl.select(
        pl.when(series == "")
        .then(pl.lit([], dtype=pl.List(pl.String())))
        .otherwise(series.str.split("\x00"))
        .alias(name)
    ).to_series()


def read_ad_file(path: Path, name: str | None, settings: Settings, target: AdRows) -> SourceReport:
    notes = Notes()
    config, source_name = ad_source_for(name, path, settings, notes)
    try:
        scope = scope_for(config)
    except FilterError as exc:
        raise InputError(
            settings.source_path or "<config>", f"[[ad]] {config.name}: filter: {exc}"
        ) from None
    wanted = AD_ATTRIBUTES | scope.attributes | {config.anchor_attribute.lower()}
    text = read_input(path, ("ldif", "csv"))
    note_encoding(text, notes)
    binary = BINARY_ATTRIBUTES | {config.anchor_attribute.lower()} - TEXT_ANCHOR_ATTRIBUTES
    records, fmt, blanked = ad_records(text, wanted, binary, notes)
    mapper = AdMapper(
        source=source_name,
        anchor_attribute=config.anchor_attribute,
        scope=scope,
        path=path,
        notes=notes,
        raw_text_is_bytes=fmt == "ldif",
        target=target,
        scoped=bool(scope.include_ous or scope.exclude_ous or scope.filter is not None),
    )
    for record in records:
        mapper.add(record)
    if mapper.rows:
        for attribute in (a for a in NOT_EXPORTED if a in mapper.never_seen):
            if attribute != "ms-ds-consistencyguid" or (
                config.anchor_attribute.lower() == "ms-ds-consistencyguid"
            ):
                notes.add(NOT_EXPORTED[attribute])
    anchor_column = config.anchor_attribute.lower()
    if blanked.get(anchor_column):
        fallback = (
            " fell back to objectGUID and" if anchor_column == "ms-ds-consistencyguid" else ""
        )
        notes.add(
            f"the anchor attribute {config.anchor_attribute} was exported as a type name for "
            f"{blanked[anchor_column]} users: their anchor{fallback} may be wrong; re-export it "
            "converted (e.g. [Convert]::ToBase64String)"
        )
    if mapper.unknown_enabled and "useraccountcontrol" not in mapper.never_seen:
        # enabled-drift and unmatched-ad only judge users whose state is known
        notes.add(
            f"{mapper.unknown_enabled} users without userAccountControl (or Enabled): their "
            "enabled state is unknown, so enabled-drift and unmatched-ad skip them; "
            "export userAccountControl"
        )
    if mapper.missing_guid:
        # Without objectGUID nobody's anchor is known: judged complete, every synced cloud user
        # would look orphaned and every AD user unmatched.
        notes.add(
            f"{mapper.missing_guid} users without objectGUID (an ldifde -m export?): their "
            "anchors are unknown, so the source is treated as incomplete"
        )
    return SourceReport(
        name=source_name,
        kind="ad",
        path=str(path),
        format=fmt,
        complete=not mapper.missing_guid,
        rows=mapper.rows,
        excluded=dict(mapper.excluded),
        warnings=notes.lines(),
    )


def note_encoding(text: TextInput, notes: Notes) -> None:
    if text.encoding == "cp1252":
        notes.add("not valid UTF-8: read as Windows-1252 (ldifde / PowerShell 5.1 ANSI output)")


def ad_source_for(
    name: str | None, path: Path, settings: Settings, notes: Notes
) -> tuple[AdSource, str]:
    """The [[ad]] table for an input and the `source` value its rows get."""
    if name is not None:
        return settings.ad_source(name), name
    if len(settings.ad) == 1:
        return settings.ad[0], settings.ad[0].name
    if len(settings.ad) > 1:
        notes.add(f"several [[ad]] tables and no source named for {path.name}: defaults used")
    return AdSource(name=path.stem), path.stem


def ad_records(
    text: TextInput, wanted: frozenset[str], binary: frozenset[str], notes: Notes
) -> tuple[Iterable[Record], str, dict[str, int]]:
    """Records of an AD export, its format name, and the columns blanked by type-name cells."""
    if text.format == "ldif":
        return ldif_records(text.text, text.path, wanted, binary), "ldif", {}
    table = csvfile.csv_table(text.text, text.path)
    if table.kind == csvfile.GET_MGUSER:
        raise InputError(
            text.path, "this is a Get-MgUser (cloud) export: pass it with --cloud", line=1
        )
    blanked: dict[str, int] = {}
    records = csvfile.ad_records(table, text.path, wanted, binary, notes, blanked)
    return records, table.kind, blanked


@dataclass
class AdMapper:
    """One AD input's records -> ad_users rows, counting what it drops."""

    source: str
    anchor_attribute: str
    scope: Scope
    path: Path
    notes: Notes
    raw_text_is_bytes: bool  # LDIF: a text value of a binary attribute is its raw bytes
    target: AdRows
    scoped: bool = True
    rows: int = 0
    missing_guid: int = 0
    unknown_enabled: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    # rule-relevant attributes no user has had so far (NOT_EXPORTED says what that costs)
    never_seen: set[str] = field(default_factory=lambda: set(NOT_EXPORTED))

    def add(self, record: Record) -> None:
        key = (self.source, record.dn.lower())
        if key in self.target.seen:
            where, line = self.target.seen[key]
            raise InputError(
                self.path,
                f"duplicate DN {record.dn!r} (first at {where}:{line})",
                line=record.line,
            )
        self.target.seen[key] = (str(self.path), record.line)
        reason = exclusion_reason(record)
        if reason is not None:
            self.excluded[reason] = self.excluded.get(reason, 0) + 1
            return
        self.target.rows.append(self.row(record))
        self.rows += 1
        if self.never_seen:
            attrs = record.attrs
            self.never_seen = {
                a for a in self.never_seen if a not in attrs and _ALSO_ACCEPTED.get(a) not in attrs
            }

    def row(self, record: Record) -> tuple[Any, ...]:
        attrs = record.attrs
        get = attrs.get
        guid_raw = self.guid_bytes(record)
        consistency_raw = self.consistency_bytes(record)
        anchor, anchor_attribute = self.anchor(record, guid_raw, consistency_raw)
        proxies: list[str] = get("proxyaddresses") or []  # type: ignore[assignment]
        uac = self.int_value(attrs, "useraccountcontrol")
        enabled = not uac & 2 if uac is not None else bool_from_text(_first(attrs, "enabled"))
        if enabled is None:
            self.unknown_enabled += 1
        reason = default_rule_exclusion(attrs) or (
            self.scope.out_of_scope_reason(record.dn, attrs) if self.scoped else None
        )
        texts = [v[0] if (v := get(name)) else None for name in _TEXT_ATTRIBUTES]
        target = _first(attrs, "targetaddress")
        return (
            self.source,
            record.dn,
            guid_text(guid_raw) if guid_raw is not None else None,
            _b64(consistency_raw),
            anchor,
            anchor_attribute,
            *texts[:4],
            joined_list(proxies),
            graphjson.primary_smtp(proxies),
            target,
            *texts[4:],
            enabled,
            uac,
            self.sid(record),
            self.time(attrs, "whencreated"),
            self.time(attrs, "whenchanged"),
            self.last_logon(attrs),
            bool(bool_from_text(_first(attrs, "iscriticalsystemobject"))),
            reason is None,
            reason,
        )

    def guid_bytes(self, record: Record) -> bytes | None:
        values = record.attrs.get("objectguid")
        if not values:
            self.missing_guid += 1
            return None
        value = values[0]
        if isinstance(value, str):
            if self.raw_text_is_bytes:
                value = value.encode("utf-8")
            elif _GUID_TEXT_RE.match(value.strip()):
                # Get-ADUser prints the GUID string: the bytes are its .NET order (bytes_le).
                return uuid.UUID(value.strip()).bytes_le
            else:
                raise InputError(self.path, f"objectGUID {value!r} is not a GUID", line=record.line)
        if len(value) != 16:
            raise InputError(
                self.path, f"objectGUID has {len(value)} bytes, not 16", line=record.line
            )
        return value

    def consistency_bytes(self, record: Record) -> bytes | None:
        values = record.attrs.get("ms-ds-consistencyguid")
        if not values:
            return None
        value = values[0]
        if isinstance(value, bytes):
            return value
        if self.raw_text_is_bytes:
            # LDIF writes printable bytes as text: a GUID stored as ASCII shows up this way,
            # and the rules must see exactly those bytes.
            return value.encode("utf-8")
        return self.consistency_from_text(value.strip())

    def consistency_from_text(self, text: str) -> bytes | None:
        """A flattened CSV cell: GUID text ([guid] cast), base64, or decimal bytes (-join ' ')."""
        if _GUID_TEXT_RE.match(text):
            return uuid.UUID(text).bytes_le
        if _DECIMAL_BYTES_RE.match(text):
            numbers = [int(n) for n in re.split(r"[ ,;]+", text)]
            if all(n < 256 for n in numbers):
                return bytes(numbers)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.notes.add(f"{CONSISTENCY_GUID}: unreadable values read as empty")
            return None

    def anchor(
        self, record: Record, guid_raw: bytes | None, consistency_raw: bytes | None
    ) -> tuple[str | None, str]:
        """Effective sourceAnchor (FACTS.md section 1) and the attribute it came from."""
        configured = self.anchor_attribute.lower()
        if configured == "ms-ds-consistencyguid":
            if consistency_raw:
                return _b64(consistency_raw), CONSISTENCY_GUID
            return _b64(guid_raw), OBJECT_GUID
        if configured == "objectguid":
            return _b64(guid_raw), OBJECT_GUID
        values = record.attrs.get(configured)
        if not values:
            return None, self.anchor_attribute
        value = values[0]
        # msDS-SourceAnchor and employeeID hold the anchor text itself; binary values base64.
        return (_b64(value) if isinstance(value, bytes) else value), self.anchor_attribute

    def sid(self, record: Record) -> str | None:
        values = record.attrs.get("objectsid")
        if not values:
            return None
        value = values[0]
        if isinstance(value, str):
            if value.upper().startswith("S-"):
                return value
            if not self.raw_text_is_bytes:
                self.notes.add("objectSid: unreadable values read as empty")
                return None
            value = value.encode("utf-8")
        text = sid_text(value)
        if text is None:
            self.notes.add("objectSid: malformed binary values read as empty")
        return text

    def int_value(self, attrs: dict[str, list[Value]], name: str) -> int | None:
        value = _first(attrs, name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            self.notes.add(f"{name}: non-numeric values read as empty")
            return None

    def time(self, attrs: dict[str, list[Value]], name: str) -> datetime | None:
        value = _first(attrs, name)
        if value is None:
            return None
        parsed = datetime_from_text(value)
        if parsed is None:
            self.notes.add(f"{name}: unreadable date/time values read as empty")
        return parsed

    def last_logon(self, attrs: dict[str, list[Value]]) -> datetime | None:
        """The later of lastLogon (per DC, not replicated) and lastLogonTimestamp (replicated)."""
        times = [
            datetime_from_filetime(v)
            for v in (_first(attrs, "lastlogon"), _first(attrs, "lastlogontimestamp"))
            if v is not None
        ]
        found = [t for t in times if t is not None]
        if found:
            return max(found)
        return self.time(attrs, "lastlogondate")  # Get-ADUser's converted property


# Entra Connect's out-of-box sync rules do not synchronize these users ("The following user
# objects are not synchronized to Microsoft Entra ID", entra-docs
# concept-azure-ad-connect-sync-default-configuration.md, ms.date 04/09/2025). They stay in the
# snapshot, out of scope with the reason, so an orphaned cloud account can still name them.
# (The page's `IsPresent([sAMAccountName]) = False` rule is left out: an export without the
# column would put everyone out of scope, and the page says it only happens in NT4-upgraded
# domains. Its `displayName "(MSOL)"` + hidden rule is for contacts, not users.) The rules are
# matched without case: the wizard names its accounts MSOL_<hex> and AAD_<hex>.
_EXCHANGE_SYSTEM_RECIPIENTS = 0x21C07000  # msExchRecipientTypeDetails bits the rules exclude


def default_rule_exclusion(attrs: dict[str, list[Value]]) -> str | None:
    """Why Entra Connect's default sync rules leave this user out, or None."""
    sam = (_first(attrs, "samaccountname") or "").upper()
    nickname = (_first(attrs, "mailnickname") or "").upper()
    prefix = "Entra Connect default sync rules"
    if sam.startswith(("MSOL_", "AAD_")):
        return (
            f"{prefix}: sAMAccountName starts with {sam[: sam.index('_') + 1]} (the sync account)"
        )
    if sam == "SUPPORT_388945A0":
        return f"{prefix}: sAMAccountName is SUPPORT_388945a0"
    if nickname.startswith("SYSTEMMAILBOX{"):
        return f"{prefix}: mailNickname starts with SystemMailbox{{"
    for name, value in (("mailNickname", nickname), ("sAMAccountName", sam)):
        if value.startswith("CAS_") and "}" in value:
            return f"{prefix}: {name} is an Exchange CAS_{{...}} system mailbox"
    details = _first(attrs, "msexchrecipienttypedetails")
    if details and details.isdigit() and int(details) & _EXCHANGE_SYSTEM_RECIPIENTS:
        return f"{prefix}: msExchRecipientTypeDetails {details} is an Exchange system recipient"
    return None


def exclusion_reason(record: Record) -> str | None:
    """Why an AD object is not a person Entra sync would export, or None."""
    attrs = record.attrs
    classes = [_str(v).lower() for v in attrs.get("objectclass", ())]
    category = (_first(attrs, "objectcategory") or "").lower()
    if "computer" in classes or category.startswith(("cn=computer,", "computer")):
        return "computer"
    if classes and "user" not in classes and "inetorgperson" not in classes:
        return "not-a-user"
    dn_lower = record.dn.lower()
    if "\\0acnf:" in dn_lower or "\ncnf:" in dn_lower:
        return "replication-conflict"
    if bool_from_text(_first(attrs, "iscriticalsystemobject")):
        return "critical-system-object"
    cn = (_first(attrs, "cn") or _first(attrs, "name") or _rdn_value(record.dn)).lower()
    if cn.endswith("$"):
        return "cn-ends-with-$"
    if cn in SYSTEM_CN_NAMES or cn.startswith(SYSTEM_CN_PREFIXES):
        return "system-account"
    return None


def sid_text(raw: bytes) -> str | None:
    """Binary SID -> S-R-A-S1-S2...: revision, 6-byte big-endian authority, LE sub-authorities."""
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        return None
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack_from(f"<{raw[1]}I", raw, 8)
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def guid_text(raw: bytes) -> str:
    """Canonical GUID text of objectGUID bytes (.NET order = uuid bytes_le), without uuid.UUID."""
    head = f"{raw[3::-1].hex()}-{raw[5:3:-1].hex()}-{raw[7:5:-1].hex()}"
    return f"{head}-{raw[8:10].hex()}-{raw[10:].hex()}"


def _rdn_value(dn: str) -> str:
    first = re.split(r"(?<!\\),", dn, maxsplit=1)[0]
    return first.split("=", 1)[1].strip() if "=" in first else first


def _str(value: Value) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", errors="replace")


def _first(attrs: dict[str, list[Value]], name: str) -> str | None:
    values = attrs.get(name)
    if not values:
        return None
    value = values[0]
    return value if isinstance(value, str) else _str(value)


def _b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode("ascii") if raw is not None else None


# --- Entra ------------------------------------------------------------------------------------


def read_cloud_files(
    paths: Sequence[Path], users: graphjson.CloudUsers, taken: datetime, *, deleted: bool
) -> list[SourceReport]:
    """The users of one import flag's files: one report per export, an export being a
    Get-MgUser CSV or the Graph pages of one query, however many files they were saved in."""
    reports: list[tuple[int, SourceReport]] = []  # (position of its first file, report)
    json_pages: list[graphjson.Page] = []
    file_notes: dict[Path, Notes] = {}
    order = {path: i for i, path in enumerate(paths)}
    for path in paths:
        notes = file_notes.setdefault(path, Notes())
        text = read_input(path, ("json", "csv"))
        note_encoding(text, notes)
        if text.format == "json":
            for page in graphjson.pages(text.text, path):
                _reject_wrong_response(page.context, path, page.line, deleted=deleted)
                json_pages.append(page)
            continue
        table = csvfile.csv_table(text.text, path)
        if table.kind != csvfile.GET_MGUSER:
            raise InputError(
                path, "this is an AD export, not a Graph user export: pass it with --ad", line=1
            )
        items = ((path, line, obj, "user") for line, obj in csvfile.graph_rows(table, path))
        result = graphjson.add_user_objects(users, items, notes, deleted=deleted, taken_at=taken)
        reports.append(
            (order[path], _cloud_report([path], table.kind, result, notes, deleted=deleted))
        )
    for export in graphjson.exports(json_pages):
        if deleted:
            _reject_active_users_as_deleted(export)
        notes = Notes()
        for path in export.files:
            for line in file_notes[path].lines():
                notes.add(line)
        items = (
            (page.path, page.line, obj, graphjson.page_object_type(page.context))
            for page in export.pages
            for obj in page.items
        )
        result = graphjson.add_user_objects(users, items, notes, deleted=deleted, taken_at=taken)
        report = _cloud_report(
            list(export.files),
            "graph-json" if export.enveloped or len(export.pages) == 1 else "graph-jsonl",
            result,
            notes,
            deleted=deleted,
            export=export,
        )
        reports.append((order[export.files[0]], report))
    return [report for _, report in sorted(reports, key=lambda r: r[0])]


def _cloud_report(
    files: list[Path],
    fmt: str,
    result: graphjson.UserFileResult,
    notes: Notes,
    *,
    deleted: bool,
    export: graphjson.Export | None = None,
) -> SourceReport:
    complete = export is None or export.complete
    return SourceReport(
        name=", ".join(p.name for p in files),
        kind="deleted" if deleted else "cloud",
        path=str(files[0]) if len(files) == 1 else None,
        format=fmt,
        complete=complete,
        rows=result.rows,
        excluded=result.excluded,
        warnings=notes.lines(),
        incomplete_reason=export.incomplete_reason if export is not None else None,
        notes=(export.note,) if export is not None and export.note else (),
    )


def _reject_wrong_response(context: str, path: Path, line: int, *, deleted: bool) -> None:
    """A Graph response given to the wrong import flag is refused by what its context names.
    (Users given to --deleted carry a users context too: _reject_active_users_as_deleted.)"""
    flag = graphjson.import_flag(graphjson.context_entity(context))
    right = ("--cloud", "--deleted") if deleted else ("--cloud",)
    if flag is not None and flag not in right:
        raise InputError(
            path, f"this is not a users response ({context}): pass it with {flag}", line=line
        )


def _reject_active_users_as_deleted(export: graphjson.Export) -> None:
    """GET /users given to --deleted: its context names the users set and no object carries
    deletedDateTime (a deleted-items export selected without it still names deletedItems)."""
    first = export.pages[0]
    entity = first.entity
    if not entity.startswith("users") or entity.startswith("users/delta"):
        return
    objects = [obj for page in export.pages for obj in page.items]
    if not objects or any("deleteddatetime" in obj for obj in objects):
        return
    raise InputError(
        first.path,
        "this is GET /users (active users, no deletedDateTime): pass it with --cloud; soft-"
        "deleted users come from GET /directory/deletedItems/microsoft.graph.user",
        line=first.line,
    )


def cloud_users_frame(users: graphjson.CloudUsers) -> pl.DataFrame:
    if not users.columns.get("id"):
        return empty_frame(CLOUD_USERS_SCHEMA)
    data = {
        name: users.columns.get(name, [None] * len(users.columns["id"]))
        for name in CLOUD_USERS_SCHEMA
    }
    frame = pl.DataFrame(data, schema=CLOUD_USERS_SCHEMA)
    return conform(
        frame.unique(subset=["id"], keep="last", maintain_order=True), CLOUD_USERS_SCHEMA
    )


def cloud_objects_frame(users: graphjson.CloudUsers) -> pl.DataFrame:
    if not users.objects.get("id"):
        return empty_frame(CLOUD_OBJECTS_SCHEMA)
    frame = pl.DataFrame(users.objects, schema=CLOUD_OBJECTS_SCHEMA)
    return conform(
        frame.unique(subset=["id"], keep="last", maintain_order=True), CLOUD_OBJECTS_SCHEMA
    )


def read_tenant(
    domains: Path | None, tenant: Path | None, settings: Settings
) -> tuple[Tenant, list[SourceReport]]:
    """Tenant facts; Tenant.known is False when neither file was given."""
    # The snapshot holds only what Graph said; [entra.features] is applied when the run is
    # analysed (classify.effective_features), so `analyze --config` can still change it.
    if domains is None and tenant is None:
        return Tenant(known=False), []
    reports: list[SourceReport] = []
    domain_list: list[Domain] = []
    if domains is not None:
        domain_list, report = read_domains(Path(domains))
        reports.append(report)
    facts = graphjson.TenantFacts()
    if tenant is not None:
        notes = Notes()
        text = read_input(Path(tenant), ("json",))
        facts = graphjson.tenant_from_json(text.text, text.path, notes)
        reports.append(
            SourceReport(
                name=Path(tenant).name,
                kind="tenant",
                path=str(tenant),
                format="graph-json:" + "+".join(facts.kinds),
                complete=True,
                rows=len(facts.kinds),
                warnings=notes.lines(),
            )
        )
    domain_list = domain_list or facts.domains
    initial = next((d.name for d in domain_list if d.initial), None)
    return (
        Tenant(
            tenant_id=facts.tenant_id or settings.entra.tenant_id or None,
            initial_domain=initial,
            domains=tuple(domain_list),
            dirsync_enabled=facts.dirsync_enabled,
            last_dirsync=facts.last_dirsync.isoformat().replace("+00:00", "Z")
            if facts.last_dirsync
            else None,
            features=graphjson.tenant_features(facts.features),
            known=True,
        ),
        reports,
    )


def read_domains(path: Path) -> tuple[list[Domain], SourceReport]:
    text = read_input(path, ("json", "text"))
    if text.format == "json":
        found, fmt = graphjson.domains_from_json(text.text, path), "graph-json"
    else:
        found, fmt = graphjson.domains_from_text(text.text, path), "text"
    notes = Notes()
    if not any(d.initial for d in found):
        notes.add(
            "no initial (*.onmicrosoft.com) domain listed: predicted fallback UPNs are unknown"
        )
    return found, SourceReport(
        name=path.name,
        kind="domains",
        path=str(path),
        format=fmt,
        complete=True,
        rows=len(found),
        warnings=notes.lines(),
    )


def with_roles(
    cloud: pl.DataFrame, paths: Sequence[Path]
) -> tuple[pl.DataFrame, list[SourceReport]]:
    """cloud_users with directory_roles (every role assigned, directly or through a
    role-assignable group), admin_roles (the privileged ones) and eligible_roles (privileged
    roles PIM-eligible) filled from the --roles files."""
    facts = graphjson.RoleFacts()
    reports = []
    for path in paths:
        text = read_input(path, ("json",))
        kinds = graphjson.read_roles(text.text, path, facts)
        reports.append(
            SourceReport(
                name=path.name,
                kind="roles",
                path=str(path),
                format="graph-json:" + "+".join(kinds or ["empty"]),
                complete=True,
                rows=sum(kinds.values()),
            )
        )
    known = set(cloud.get_column("id").to_list())
    assigned: dict[str, set[str]] = {}
    privileged: dict[str, set[str]] = {}
    eligible: dict[str, set[str]] = {}
    unresolved: dict[Path | None, set[str]] = {}
    unknown_privilege: dict[Path | None, set[str]] = {}
    for grant in facts.grants:
        name, is_privileged = facts.role(grant)
        if is_privileged is None:
            unknown_privilege.setdefault(grant.path, set()).add(name)
        if grant.principal_id in known:
            principals = {grant.principal_id}
        elif grant.principal_id in facts.group_members:
            # role-assignable groups cannot contain groups (groups-concept.md): one level
            principals = facts.group_members[grant.principal_id] & known
        else:
            unresolved.setdefault(grant.path, set()).add(grant.principal_id)
            continue
        for principal in principals:
            if grant.eligible:
                if is_privileged:
                    eligible.setdefault(principal, set()).add(name)
                continue  # an eligibility is not an assignment: it does not block soft match
            assigned.setdefault(principal, set()).add(name)
            if is_privileged:
                privileged.setdefault(principal, set()).add(name)
    warnings: dict[str, list[str]] = {r.name: [] for r in reports}

    def warn(origin: Path | None, text: str) -> None:
        warnings[origin.name if origin else reports[0].name].append(text)

    for origin, principals in unresolved.items():
        warn(
            origin,
            f"{len(principals)} principals with roles are neither users of the cloud export nor "
            "role-assignable groups whose members --roles lists (service principals, or groups: "
            "add their members): their roles are not counted",
        )
    for origin, names in unknown_privilege.items():
        shown = ", ".join(sorted(names)[:5])
        warn(
            origin,
            f"{len(names)} roles of unknown privilege ({shown}{'...' if len(names) > 5 else ''}; "
            f"custom, or newer than the built-in table of {entra_roles.AS_OF}): they block soft "
            "match but are not counted as privileged; add GET "
            "/beta/roleManagement/directory/roleDefinitions to --roles to let isPrivileged decide",
        )
    cut: dict[Path, int] = {}
    for origin in facts.groups_maybe_cut.values():
        cut[origin] = cut.get(origin, 0) + 1
    for origin, count in cut.items():
        warn(
            origin,
            f"{count} role-assignable groups list exactly {graphjson.EXPAND_LIMIT} members, the "
            "most $expand returns: export their members with Get-MgGroupMember -All instead",
        )
    reports = [replace(r, warnings=tuple(warnings[r.name])) for r in reports]
    ids = cloud.get_column("id").to_list()

    def column(name: str, roles: dict[str, set[str]]) -> pl.Series:
        return pl.Series(name, [sorted(roles.get(i, ())) for i in ids], dtype=pl.List(pl.String()))

    cloud = cloud.with_columns(
        column("directory_roles", assigned),
        column("admin_roles", privileged),
        column("eligible_roles", eligible),
    )
    return conform(cloud, CLOUD_USERS_SCHEMA), reports
