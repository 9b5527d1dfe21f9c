"""Consistent masks for UPNs, names and DNs in reports that leave the admin team (``--redact``).

What is masked, and how:

* a UPN or e-mail address ``anne.dubois@contoso.com`` becomes ``user-<h>@contoso.com``: the
  local part is masked, the domain is kept (domains are the organisation's, not a person's,
  and findings such as ``upn-suffix-unverified`` are about them);
* a name (display name, given name, surname, sAMAccountName, mailNickname) becomes
  ``name-<h>``;
* a DN keeps its structure and masks the object's own RDN:
  ``CN=Anne Dubois,OU=Staff,DC=corp,...`` becomes ``CN=name-<h>,OU=Staff,DC=corp,...``, so the
  OU a problem sits in stays visible.

``<h>`` is the first 12 hex digits of HMAC-SHA256(key, lower-cased value): the same input
always gives the same mask (within a report, across formats and across runs that share the
key), case variants of one address give one mask, and without the key nobody can confirm a
guess ("is user-3f9a... anne.dubois?") by hashing candidate names. 48 bits keep accidental
collisions unlikely (about 0.2 % for a million distinct values).

The key comes from ``SYNCAUDIT_REDACT_KEY`` (any text) or else from ``.syncaudit-redact-key``
beside the run directories (created on first use, mode 0600), so weekly redacted reports of
one data directory use the same masks and can be compared.

Scope: the masks are applied to the findings frame the report model is built from, so every
format rendered from the model (report.html, report.pdf, findings.xlsx) is redacted. The run
directory's findings.{parquet,json,csv} and the snapshot stay unredacted: they are the admin
team's working data (remediation.ps1 and the history need the real objects) and do not leave
it. GUIDs, object ids and anchors are not masked: they name no one outside the directory and
the admin needs them to act.

Free-text columns (detail, evidence, value, proposed_value) are masked by replacing every
known sensitive string in one case-sensitive pass (Aho-Corasick, leftmost-longest): the
structured UPNs and DNs of the findings, the display names, sAMAccountNames, mailNicknames and
addresses of the AD and cloud users the findings are about, and any further e-mail address or
``CN=`` RDN found in the text. Given names and surnames alone, and names shorter than four
characters, are not searched for inside running text (they would mangle ordinary words such as
"Hall" in "shall"); they are masked when they are a whole value/proposed_value cell, and the
UPNs and DNs that carry them are masked everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence

import polars as pl

from audit.model import Snapshot
from audit.sources.scope import split_first_rdn

HASH_HEX = 12
MIN_FREE_TEXT_NAME = 4

EMAIL_COLUMNS = ("ad_upn", "cloud_upn")
DN_COLUMNS = ("ad_dn",)
FREE_TEXT_COLUMNS = ("detail", "evidence", "value", "proposed_value", "waiver_reason")

# An address: local part (no spaces), @, a dotted domain.
EMAIL_RE = r"[A-Za-z0-9._%+'!#$&*/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# The first RDN of a DN in running text or JSON: CN=... up to the first unescaped comma or quote,
# at the start or after a space, quote or bracket (so parent containers such as CN=Users stay).
CN_RE = r"(?:^|[\s\"'(\[])(?i:CN)=(?:\\.|[^,\\\"])+"

AD_NAME_COLUMNS = ("display_name", "sam_account_name", "mail_nickname")
# Searched as whole cells of value / proposed_value only (an invalid givenName is the value).
AD_WHOLE_CELL_COLUMNS = ("given_name", "surname")
WHOLE_CELL_COLUMNS = ("value", "proposed_value")
AD_ADDRESS_COLUMNS = ("upn", "mail", "primary_smtp")
CLOUD_NAME_COLUMNS = ("display_name", "mail_nickname", "on_prem_sam")
CLOUD_ADDRESS_COLUMNS = ("upn", "mail", "primary_smtp", "on_prem_upn")
# Attributes whose value (and proposed value) is a person's name or address: masked as whole
# cells and searched in the text, whatever the rule did to them (a blank displayName's proposal
# is the person's name; a too-long name is proposed cut short, so it is no longer the value
# searched for).
PERSONAL_ATTRIBUTES = frozenset(
    {
        "cn",
        "name",
        "displayname",
        "givenname",
        "sn",
        "surname",
        "samaccountname",
        "mailnickname",
        "userprincipalname",
        "mail",
        "proxyaddresses",
        "primarysmtp",
        "targetaddress",
    }
)


class Redactor:
    """Maps sensitive values to masks; deterministic for one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def fingerprint(self, value: str) -> str:
        """A keyed stand-in for a finding's fingerprint: the plain one is a hash of the masked
        value, so anyone could confirm a guess of it offline."""
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:20]

    def token(self, value: str) -> str:
        digest = hmac.new(self._key, value.strip().lower().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:HASH_HEX]

    def name(self, value: str) -> str:
        return f"name-{self.token(value)}"

    def email(self, value: str) -> str:
        local, at, domain = value.rpartition("@")
        if not at or not local:
            return self.name(value)
        return f"user-{self.token(local)}@{domain.strip().lower()}"

    def dn(self, value: str) -> str:
        """Mask the object's own RDN value; keep the attribute type and the parents."""
        rdn, rest = split_first_rdn(value)
        kind, eq, rdn_value = rdn.partition("=")
        if not eq:
            return self.name(value)
        return f"{kind}={self.name(rdn_value)}{rest}"

    def any(self, value: str) -> str:
        """Mask a value whose kind is only known from its shape."""
        stripped = value.strip()
        if "=" in stripped.split(",", 1)[0] and "," in stripped:
            return self.dn(value)
        if "@" in stripped:
            return self.email(value)
        return self.name(value)


def redact_findings(
    findings: pl.DataFrame, redactor: Redactor, snapshot: Snapshot | None = None
) -> pl.DataFrame:
    """The findings with UPNs, names and DNs masked in every column a report shows."""
    if findings.is_empty():
        return findings
    masks = _Masks(redactor)
    for column in EMAIL_COLUMNS:
        masks.add(findings[column].unique().to_list(), "email")
    for column in DN_COLUMNS:
        masks.add(findings[column].unique().to_list(), "dn")
    if snapshot is not None:
        _add_involved_users(findings, snapshot, masks)
    _add_personal_values(findings, masks)

    text_columns = [c for c in FREE_TEXT_COLUMNS if c in findings.columns]
    found = findings.select(
        pl.concat_list(
            [pl.col(c).fill_null("").str.extract_all(EMAIL_RE) for c in text_columns]
        ).alias("emails"),
        pl.concat_list(
            [pl.col(c).fill_null("").str.extract_all(CN_RE) for c in text_columns]
        ).alias("cns"),
    )
    # A quoted address ('anne@x') must give the same mask as the bare one: drop leading quotes.
    emails = found["emails"].explode().drop_nulls().unique().to_list()
    masks.add([e.lstrip("'`") for e in emails], "email")
    cns = [t.lstrip(" \t\r\n\"'([") for t in found["cns"].explode().drop_nulls().unique().to_list()]
    masks.add(cns, "dn")

    exprs: list[pl.Expr] = []
    for column in EMAIL_COLUMNS:
        exprs.append(mask_column(findings, column, redactor.email))
    for column in DN_COLUMNS:
        exprs.append(mask_column(findings, column, redactor.dn))
    # Longest first: with leftmost matching, "anne marie.dubois@x" wins over "marie.dubois@x".
    patterns = sorted(masks.in_text, key=len, reverse=True)
    replacements = [masks.in_text[p] for p in patterns]
    for column in text_columns:
        expr = pl.col(column)
        if column in WHOLE_CELL_COLUMNS and masks.whole_cell:
            expr = expr.replace(masks.whole_cell)
        if patterns:
            expr = expr.str.replace_many(patterns, replacements, leftmost=True)
        exprs.append(expr.alias(column))
    exprs.append(pl.col("fingerprint").map_elements(redactor.fingerprint, return_dtype=pl.String))
    return findings.with_columns(exprs)


class _Masks:
    """Sensitive strings -> masks: searched in running text, or matched as whole cells."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.in_text: dict[str, str] = {}
        self.whole_cell: dict[str, str] = {}

    def add(self, values: Sequence[str | None], kind: str) -> None:
        for value in values:
            if not value or value in self.in_text:
                continue
            if kind == "email":
                mask = self.redactor.email(value)
            elif kind == "dn":
                mask = self.redactor.dn(value)
            else:
                mask = self.redactor.name(value)
            self.whole_cell[value] = mask
            if kind != "whole-cell" and len(value.strip()) >= MIN_FREE_TEXT_NAME:
                self.in_text[value] = mask
                # The evidence column is JSON, where a DN's escaped comma or a quote is escaped
                # again (CN=O'Brien\\, Pat): the escaped form is searched for too.
                escaped = json.dumps(value, ensure_ascii=False)[1:-1]
                if escaped != value:
                    self.in_text[escaped] = json.dumps(mask, ensure_ascii=False)[1:-1]


def _add_personal_values(findings: pl.DataFrame, masks: _Masks) -> None:
    """value / proposed_value of findings about a personal attribute, and each part of a
    comma-joined list of them (duplicates name several values in one cell)."""
    if "attribute" not in findings.columns:
        return
    about_people = (
        pl.col("attribute")
        .fill_null("")
        .str.to_lowercase()
        .str.split(",")
        .list.eval(pl.element().is_in(list(PERSONAL_ATTRIBUTES)))
        .list.any()
    )
    rows = findings.filter(about_people)
    values: set[str] = set()
    for column in WHOLE_CELL_COLUMNS:
        for value in rows[column].drop_nulls().unique().to_list():
            values.add(value)
            values.update(part.strip() for part in value.split(",") if part.strip())
    plain: set[str] = set()
    for value in sorted(values):
        prefix, address = _proxy_parts(value)
        if prefix:
            # smtp:anne@x -> smtp:<the mask of anne@x>, so one person keeps one mask
            plain.add(address)
            masks.whole_cell.setdefault(value, prefix + masks.redactor.email(address))
        else:
            plain.add(value)
    masks.add(sorted(v for v in plain if "@" in v), "email")
    masks.add(sorted(v for v in plain if "@" not in v), "name")


def _proxy_parts(value: str) -> tuple[str, str]:
    """("smtp:", "anne@x") for a proxy address with an address type, else ("", value)."""
    kind, colon, rest = value.partition(":")
    if colon and "@" in rest and kind.lower() in ("smtp", "sip", "x500", "eum", "x400"):
        return kind + colon, rest
    return "", value


def mask_column(frame: pl.DataFrame, column: str, mask: Callable[[str], str]) -> pl.Expr:
    """`column` with each distinct value masked once (the masks are keyed hashes in Python:
    per distinct value, not per row)."""
    mapping = {v: mask(v) for v in frame[column].unique().to_list() if v}
    return pl.col(column).replace(mapping) if mapping else pl.col(column)


def _add_involved_users(findings: pl.DataFrame, snapshot: Snapshot, masks: _Masks) -> None:
    """Names and addresses of the AD and cloud users the findings are about."""
    guids = findings["ad_object_guid"].drop_nulls().unique()
    ad = snapshot.ad_users.filter(pl.col("object_guid").is_in(guids.implode()))
    ids = findings["cloud_id"].drop_nulls().unique()
    cloud = snapshot.cloud_users.filter(pl.col("id").is_in(ids.implode()))
    for frame, addresses, names, whole, dns in (
        (ad, AD_ADDRESS_COLUMNS, AD_NAME_COLUMNS, AD_WHOLE_CELL_COLUMNS, ("dn",)),
        (cloud, CLOUD_ADDRESS_COLUMNS, CLOUD_NAME_COLUMNS, (), ("on_prem_dn",)),
    ):
        if frame.is_empty():
            continue
        for column in addresses:
            masks.add(frame[column].drop_nulls().unique().to_list(), "email")
        proxies = (
            frame["proxy_addresses"]
            .explode()
            .drop_nulls()
            .str.replace(r"^(?i:smtp|sip|x500|eum):", "")
            .unique()
            .to_list()
        )
        masks.add([p for p in proxies if "@" in p], "email")
        for column in dns:
            masks.add(frame[column].drop_nulls().unique().to_list(), "dn")
        for column in names:
            masks.add(frame[column].drop_nulls().unique().to_list(), "name")
        for column in whole:
            masks.add(frame[column].drop_nulls().unique().to_list(), "whole-cell")
