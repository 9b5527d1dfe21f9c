"""An AD user record -> an ``ad_users`` row, whether the record came from an LDIF or CSV file
or from a live LDAP page: exclusions, effective anchor, enabled state, scope, SID/GUID text.

Which AD objects become ``ad_users`` rows (decided in :mod:`audit.sources.ad_exclusions`):

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from audit.anchor import GUID_PATTERN
from audit.config import AdSource, Settings
from audit.errors import InputError, Origin
from audit.model import AD_USERS_SCHEMA, SourceReport, empty_frame
from audit.sources.ad_exclusions import default_rule_exclusion, exclusion_reason
from audit.sources.detect import (
    Notes,
    bool_from_text,
    datetime_from_filetime,
    datetime_from_text,
)
from audit.sources.entra import primary_smtp
from audit.sources.records import (
    BINARY_ATTRIBUTES,
    CHUNK_ROWS,
    Record,
    Value,
    first_text,
    joined_list,
    rows_frame,
)
from audit.sources.scope import FilterError, Scope, scope_for

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
# Attributes the rules judge by that an export may leave out (a hand-made ldifde -l list, a
# Get-ADUser -Properties without them): when no user at all has one, the import says what
# cannot be judged instead of reporting everyone as clean. The README's ldifde command asks for
# all of them.
NOT_EXPORTED: dict[str, tuple[str, str, str]] = {
    # attribute: (its name, what its absence costs, the cost when only an export is to blame)
    "mail": (
        "mail",
        "mail duplicates and conflicts with cloud objects and the mail checks of "
        "invalid-attribute cannot be judged",
        "if the export left it out, ",
    ),
    "proxyaddresses": (
        "proxyAddresses",
        "soft match on the primary SMTP address (soft-match-pending/-blocked, unmatched-ad), "
        "address duplicates and conflicts, and the proxyAddresses checks of invalid-attribute "
        "cannot be judged",
        "if the export left it out, ",
    ),
    "ms-ds-consistencyguid": (
        "mS-DS-ConsistencyGuid",
        "every anchor falls back to objectGUID, so users whose ConsistencyGuid differs "
        "(migrated, restamped) are matched wrongly and consistency-guid-invalid/-differs cannot "
        "be judged",
        "if the export left it out, ",
    ),
    "useraccountcontrol": (
        "userAccountControl",
        "enabled states are unknown, so enabled-drift and unmatched-ad judge nobody",
        "",
    ),
}


def not_exported(attribute: str, live: bool) -> str:
    """Why no user having `attribute` matters. A live read asked for it: none is set, or AD
    permissions hide it from the bind account (a hidden attribute reads as absent)."""
    name, cost, if_left_out = NOT_EXPORTED[attribute]
    if live:
        return (
            f"no user has {name}, though the read asked for it: unset in this directory, or "
            f"hidden from the bind account by AD permissions; if hidden, {cost}: let the "
            f"account read {name}"
        )
    return f"no user has {name}: {if_left_out}{cost}; export {name}"


_ALSO_ACCEPTED = {"useraccountcontrol": "enabled"}  # Get-ADUser's Enabled property
_GUID_TEXT_RE = re.compile(rf"^\{{?{GUID_PATTERN}\}}?$")
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


# --- AD ---------------------------------------------------------------------------------------


@dataclass
class AdRows:
    """ad_users rows of every AD input, in order: tuples in AD_USERS_SCHEMA order, and frames
    (conformed) that earlier tuples were compacted into; and every DN met, by source, for the
    duplicate check. Moving them to another AdRows is `merge`."""

    rows: list[tuple[Any, ...] | pl.DataFrame] = field(default_factory=list)
    # "<source>\0<dn lower-case>" -> where it was first met: its position << 16 | an index
    # into `places` ((input, "line" or "page")). One string and one int per DN: an Origin per
    # DN cost ~450 bytes, a third of a live read's peak beside its frame.
    seen: dict[str, int] = field(default_factory=dict)
    places: list[tuple[str, str]] = field(default_factory=list)
    pending: int = 0  # tuples at the end of `rows` since the last compaction
    chunk_rows: int = CHUNK_ROWS

    def first_met(self, source: str, dn: str) -> Origin | None:
        """Where this source's DN (any case) was met before, or None."""
        found = self.seen.get(f"{source}\x00{dn.lower()}")
        if found is None:
            return None
        where, kind = self.places[found & 0xFFFF]
        position = found >> 16
        return (
            Origin(where, line=position) if kind == "line" else Origin(where, page=position, obj=dn)
        )

    def meet(self, source: str, dn: str, where: str, kind: str, position: int) -> None:
        place = (where, kind)
        if not self.places or self.places[-1] != place:  # a new input (or back to an old one)
            if place not in self.places:
                self.places.append(place)
            index = self.places.index(place)
        else:
            index = len(self.places) - 1
        self.seen[f"{source}\x00{dn.lower()}"] = position << 16 | index

    def merge(self, other: AdRows) -> None:
        """Take `other`'s rows (after this one's) and the DNs it met."""
        self.rows.extend(other.rows)
        remap = []
        for place in other.places:
            if place not in self.places:
                self.places.append(place)
            remap.append(self.places.index(place))
        for key, value in other.seen.items():
            self.seen[key] = (value >> 16) << 16 | remap[value & 0xFFFF]

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self.pending += 1
        if self.pending >= self.chunk_rows:
            # the tuples added since the last chunk, not a frame `rows` was extended with since
            start = len(self.rows)
            while start > len(self.rows) - self.pending and isinstance(self.rows[start - 1], tuple):
                start -= 1
            self.rows[start:] = [rows_frame(self.rows[start:])]
            self.pending = 0

    def frame(self) -> pl.DataFrame:
        if not self.rows:
            return empty_frame(AD_USERS_SCHEMA)
        parts: list[pl.DataFrame] = []
        run: list[tuple[Any, ...]] = []
        for item in self.rows:
            if isinstance(item, pl.DataFrame):
                parts.extend([rows_frame(run), item] if run else [item])
                run = []
            else:
                run.append(item)
        if run:
            parts.append(rows_frame(run))
        return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


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


@dataclass
class AdMapper:
    """One AD input's records -> ad_users rows, counting what it drops."""

    source: str
    anchor_attribute: str
    scope: Scope
    where: str  # the input, as errors name it: a file path, or a live source's URL
    notes: Notes
    raw_text_is_bytes: bool  # LDIF: a text value of a binary attribute is its raw bytes
    target: AdRows
    scoped: bool = True
    rows: int = 0
    missing_guid: int = 0
    missing_anchor: int = 0  # users whose configured anchor attribute has no value
    unknown_enabled: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    # rule-relevant attributes no user has had so far (NOT_EXPORTED says what that costs)
    never_seen: set[str] = field(default_factory=lambda: set(NOT_EXPORTED))
    # what Record.line counts in this input: a file's "line", or a live source's "page"
    position: str = "line"

    def origin(self, record: Record) -> Origin:
        if self.position == "line":
            return Origin(self.where, line=record.line)
        return Origin(self.where, page=record.line, obj=record.dn)

    def add(self, record: Record) -> None:
        first = self.target.first_met(self.source, record.dn)
        if first is not None:
            raise InputError(self.origin(record), f"duplicate DN {record.dn!r} (first at {first})")
        self.target.meet(self.source, record.dn, self.where, self.position, record.line)
        reason = exclusion_reason(record)
        if reason is not None:
            self.excluded[reason] = self.excluded.get(reason, 0) + 1
            return
        self.target.add(self.row(record))
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
        if anchor is None:
            self.missing_anchor += 1
        proxies: list[str] = get("proxyaddresses") or []  # type: ignore[assignment]
        uac = self.int_value(attrs, "useraccountcontrol")
        enabled = not uac & 2 if uac is not None else bool_from_text(first_text(attrs, "enabled"))
        if enabled is None:
            self.unknown_enabled += 1
        reason = default_rule_exclusion(attrs) or (
            self.scope.out_of_scope_reason(record.dn, attrs) if self.scoped else None
        )
        texts = [v[0] if (v := get(name)) else None for name in _TEXT_ATTRIBUTES]
        target = first_text(attrs, "targetaddress")
        return (
            self.source,
            record.dn,
            guid_text(guid_raw) if guid_raw is not None else None,
            _b64(consistency_raw),
            anchor,
            anchor_attribute,
            *texts[:4],
            joined_list(proxies),
            primary_smtp(proxies),
            target,
            *texts[4:],
            enabled,
            uac,
            self.sid(record),
            self.time(attrs, "whencreated"),
            self.time(attrs, "whenchanged"),
            self.last_logon(attrs),
            bool(bool_from_text(first_text(attrs, "iscriticalsystemobject"))),
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
                raise InputError(self.origin(record), f"objectGUID {value!r} is not a GUID")
        if len(value) != 16:
            raise InputError(self.origin(record), f"objectGUID has {len(value)} bytes, not 16")
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
        value = first_text(attrs, name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            self.notes.add(f"{name}: non-numeric values read as empty")
            return None

    def time(self, attrs: dict[str, list[Value]], name: str) -> datetime | None:
        value = first_text(attrs, name)
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
            for v in (first_text(attrs, "lastlogon"), first_text(attrs, "lastlogontimestamp"))
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


def _b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode("ascii") if raw is not None else None


@dataclass(frozen=True)
class AdReading:
    """What any reader of one [[ad]] source (a file, a live LDAP search) needs before it reads:
    the attributes to ask for, the ones that are binary, and the sync scope."""

    config: AdSource
    source: str  # the `source` column of its rows
    scope: Scope
    wanted: frozenset[str]
    binary: frozenset[str]


def prepare_ad_source(config: AdSource, source: str, config_path: str | None) -> AdReading:
    """The reading plan of an [[ad]] table; a bad `filter` is an InputError naming the table."""
    try:
        scope = scope_for(config)
    except FilterError as exc:
        raise InputError(
            config_path or "<config>", f"[[ad]] {config.name}: filter: {exc}"
        ) from None
    anchor = config.anchor_attribute.lower()
    return AdReading(
        config=config,
        source=source,
        scope=scope,
        wanted=AD_ATTRIBUTES | scope.attributes | {anchor},
        binary=BINARY_ATTRIBUTES | ({anchor} - TEXT_ANCHOR_ATTRIBUTES),
    )


def map_ad_records(
    records: Iterable[Record],
    reading: AdReading,
    *,
    where: str,
    fmt: str,
    notes: Notes,
    target: AdRows,
    raw_text_is_bytes: bool,
    position: str = "line",
    blanked: dict[str, int] | None = None,
) -> SourceReport:
    """One input's records -> rows in `target`, and its source report. Every reader, file or
    live, ends here."""
    scope = reading.scope
    mapper = AdMapper(
        source=reading.source,
        anchor_attribute=reading.config.anchor_attribute,
        scope=scope,
        where=where,
        notes=notes,
        raw_text_is_bytes=raw_text_is_bytes,
        target=target,
        scoped=bool(scope.include_ous or scope.exclude_ous or scope.filter is not None),
        position=position,
    )
    for record in records:
        mapper.add(record)
    return ad_source_report(mapper, reading.config, fmt, blanked or {}, where)


def ad_source_report(
    mapper: AdMapper, config: AdSource, fmt: str, blanked: dict[str, int], origin: str
) -> SourceReport:
    """The source report of one AD input after its records went through `mapper`: what could
    not be judged (attributes no user has, anchors exported as type names, unknown enabled
    states) and whether it is complete (objectGUID on every user)."""
    notes = mapper.notes
    if mapper.rows:
        for attribute in (a for a in NOT_EXPORTED if a in mapper.never_seen):
            if attribute != "ms-ds-consistencyguid" or (
                config.anchor_attribute.lower() == "ms-ds-consistencyguid"
            ):
                notes.add(not_exported(attribute, live=fmt == "ldap"))
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
    # An anchor attribute that no user has (a typo, an attribute this forest's schema lacks or
    # the bind account cannot read) leaves every anchor unknown: judged complete, every synced
    # cloud user would look orphaned. Some users without it is normal (they do not sync).
    no_anchor = bool(mapper.rows) and mapper.missing_anchor == mapper.rows
    if no_anchor and not mapper.missing_guid:
        notes.add(
            f"no user has the anchor attribute {config.anchor_attribute} (anchor_attribute): "
            "every anchor is unknown, so the source is treated as incomplete; check the name, "
            "that this forest has it and that it can be read"
        )
    return SourceReport(
        name=mapper.source,
        kind="ad",
        path=origin,
        format=fmt,
        complete=not mapper.missing_guid and not no_anchor,
        rows=mapper.rows,
        excluded=dict(mapper.excluded),
        warnings=notes.lines(),
    )
