"""One Snapshot out of the sides every source produced, whatever read them (files today, live
directories next): the checks that belong to the whole side, not to one reader."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import polars as pl

from audit.errors import InputError
from audit.model import Snapshot, SourceReport, Tenant
from audit.sources.detect import datetime_from_text


def assemble_snapshot(
    *,
    ad_users: pl.DataFrame,
    cloud_users: pl.DataFrame,
    cloud_objects: pl.DataFrame,
    tenant: Tenant,
    reports: list[SourceReport],
    taken: datetime,
) -> Snapshot:
    """The snapshot of one run: over-long values cut (with a warning on the side's first
    report), and an empty side marked incomplete."""
    ad_frame, ad_clipped = clip_long_values(ad_users, "dn")
    cloud_frame, cloud_clipped = clip_long_values(cloud_users, "id")
    objects_frame, objects_clipped = clip_long_values(cloud_objects, "id")
    reports = with_warnings(reports, "ad", ad_clipped)
    reports = with_warnings(reports, "cloud", [*cloud_clipped, *objects_clipped])
    return Snapshot(
        ad_users=ad_frame,
        cloud_users=cloud_frame,
        tenant=tenant,
        cloud_objects=objects_frame,
        sources=tuple(empty_side_is_incomplete(reports)),
        taken_at=taken.isoformat().replace("+00:00", "Z"),
    )


def taken_at(text: str | None) -> datetime:
    """When the sources were read: the operator's ISO time, else now."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    parsed = datetime_from_text(text)
    if parsed is None:
        raise InputError("taken_at (--taken-at)", f"not an ISO 8601 time: {text!r}")
    return parsed


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
