"""Waivers: accepted exceptions, kept in a TOML file the config names (``[run] waivers``).

Each ``[[waiver]]`` names a finding code, at least one selector, why, who owns the decision and
until when::

    [[waiver]]
    code = "cloud-orphan"
    cloud = "svc-scanner@contoso.com"   # the cloud object: its id or UPN
    reason = "Scanner account, cloud-only by design"
    owner = "jane.doe@contoso.com"
    expires = 2027-03-31               # a TOML date; in force through that day (UTC)

Selectors (every one given must match): ``fingerprint`` (the finding's, from findings.csv),
``ad`` (the AD object: objectGUID, DN or UPN), ``cloud`` (the cloud object: id or UPN),
``attribute``. Texts compare without regard to case. A waived finding stays in every output,
marked (waived, waiver_reason, waiver_expires, status "waived"); it does not count toward
``fail_on`` or sync health. A waiver past its date waives nothing: its findings are open again
and the waiver is listed, as is a waiver that matches no finding (a typo, or a problem fixed).
An invalid file stops the analysis with one line naming the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from audit.errors import ConfigError
from audit.rules import rule_by_code

SELECTORS = ("fingerprint", "ad", "cloud", "attribute")
TEXTS = ("code", "reason", "owner", *SELECTORS)
# What each selector compares with, in the findings frame.
_COLUMNS = {
    "fingerprint": ("fingerprint",),
    "ad": ("ad_object_guid", "ad_dn", "ad_upn"),
    "cloud": ("cloud_id", "cloud_upn"),
    "attribute": ("attribute",),
}


@dataclass(frozen=True)
class Waiver:
    number: int  # its place in the file, from 1
    code: str
    reason: str
    owner: str
    expires: date
    selectors: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        chosen = ", ".join(f"{k} {v}" for k, v in self.selectors.items())
        return f"waiver {self.number} ({self.code}; {chosen}; owner {self.owner})"

    def matches(self) -> pl.Expr:
        """The findings this waiver names (whatever its date)."""
        expr = pl.col("code") == self.code
        for name, wanted in self.selectors.items():
            wanted_lower = wanted.lower()
            expr &= pl.any_horizontal(
                pl.col(column).str.to_lowercase().eq(wanted_lower).fill_null(False)
                for column in _COLUMNS[name]
            )
        return expr


@dataclass(frozen=True)
class WaiverOutcome:
    findings: pl.DataFrame  # waived, waiver_reason, waiver_expires and status set
    applied: Mapping[int, int]  # waiver number -> findings it waived
    expired: tuple[tuple[Waiver, int], ...]  # past their date, and the findings they reopen
    unmatched: tuple[Waiver, ...]  # in force, matching nothing

    def notes(self) -> list[str]:
        """What the reports and the summary list about the waivers."""
        lines = [
            f"{w.label} expired on {w.expires.isoformat()}: its {n} "
            f"{'finding is' if n == 1 else 'findings are'} open again"
            for w, n in self.expired
        ]
        lines += [
            f"{w.label} matches no finding: fixed, or a selector is wrong" for w in self.unmatched
        ]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "waived": sum(self.applied.values()),
            "expired": [w.label for w, _ in self.expired],
            "unmatched": [w.label for w in self.unmatched],
        }


def load_waivers(path: Path) -> list[Waiver]:
    """The waivers of `path`; ConfigError (one line naming the file and the entry) when the
    file is not a list of valid [[waiver]] tables."""
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except FileNotFoundError:
        raise ConfigError(f"{path}: waivers file not found ([run] waivers)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8; save the waivers file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"waiver"})
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {unknown[0]!r}: use [[waiver]] tables")
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: waiver must be an array of tables ([[waiver]])")
    return [_waiver(path, number, entry) for number, entry in enumerate(entries, start=1)]


def _waiver(path: Path, number: int, entry: Any) -> Waiver:
    where = f"{path}: waiver {number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: not a table")
    unknown = sorted(set(entry) - {*TEXTS, "expires"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(TEXTS)}, expires)"
        )
    for key in TEXTS:
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    code = entry.get("code")
    if code is None:
        raise ConfigError(f"{where}: code is missing (the finding code it waives)")
    if rule_by_code(code) is None:
        raise ConfigError(f"{where}: unknown finding code {code!r} (see syncaudit explain)")
    for key in ("reason", "owner"):
        if entry.get(key) is None:
            raise ConfigError(f"{where} ({code}): {key} is missing: every waiver says why and who")
    expires = entry.get("expires")
    if not isinstance(expires, date) or hasattr(expires, "hour"):
        raise ConfigError(
            f"{where} ({code}): expires must be a date without quotes, e.g. expires = 2027-03-31"
        )
    selectors = {k: entry[k].strip() for k in SELECTORS if entry.get(k) is not None}
    if not selectors:
        raise ConfigError(
            f"{where} ({code}): give at least one of {', '.join(SELECTORS)}: a waiver names "
            "the findings it accepts, not a whole code"
        )
    return Waiver(
        number=number,
        code=code.strip(),
        reason=entry["reason"].strip(),
        owner=entry["owner"].strip(),
        expires=expires,
        selectors=selectors,
    )


def apply_waivers(findings: pl.DataFrame, waivers: Sequence[Waiver], today: date) -> WaiverOutcome:
    """`findings` with the waivers in force on `today` applied (the first in the file wins
    when two name the same finding)."""
    in_force = [w for w in waivers if today <= w.expires]
    expired = [w for w in waivers if today > w.expires]
    if not waivers or not findings.height:
        return WaiverOutcome(
            findings,
            {},
            tuple((w, 0) for w in expired),
            tuple(in_force),
        )
    found = findings.select(*(w.matches().sum().alias(str(w.number)) for w in waivers))
    counts = {w.number: int(found[str(w.number)][0]) for w in waivers}
    # The number of the first waiver in force that names each finding (null: none does).
    number: pl.Expr = pl.lit(None, pl.Int64)
    for w in reversed(in_force):  # built inside out, so the first waiver is the outer branch
        number = pl.when(w.matches()).then(pl.lit(w.number, pl.Int64)).otherwise(number)
    reasons = {w.number: f"{w.reason} (owner {w.owner}; waiver {w.number})" for w in in_force}
    until = {w.number: w.expires.isoformat() for w in in_force}
    marked = findings
    if in_force:
        waiver = pl.col("_waiver")
        marked = (
            findings.with_columns(_waiver=number)
            .with_columns(
                waiver_reason=waiver.replace_strict(reasons, default=None, return_dtype=pl.String),
                waiver_expires=waiver.replace_strict(until, default=None, return_dtype=pl.String),
                waived=waiver.is_not_null(),
                status=pl.when(waiver.is_not_null())
                .then(pl.lit("waived"))
                .otherwise(pl.col("status")),
            )
            .drop("_waiver")
        )
    applied = {w.number: counts[w.number] for w in in_force}
    return WaiverOutcome(
        findings=marked,
        applied=applied,
        expired=tuple((w, counts[w.number]) for w in expired),
        unmatched=tuple(w for w in in_force if applied[w.number] == 0),
    )
