"""Shared by the anchor, matching and duplicates rule tests: run exactly those families and
compare findings as (code, AD dn, cloud id, attribute, value)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from audit.classify import classify
from audit.model import Snapshot
from audit.rules import anchor, consistency, duplicates, hardening, matching
from tests.factories import settings

RULES = (
    *anchor.RULES,
    *consistency.RULES,
    *matching.RULES,
    *hardening.RULES,
    *duplicates.RULES,
)

Key = tuple[str, str | None, str | None, str | None, str | None]


def run(snap: Snapshot, **thresholds: float) -> pl.DataFrame:
    return classify(snap, settings(**thresholds), rules=RULES)


def keys(findings: pl.DataFrame) -> set[Key]:
    return {
        (r["code"], r["ad_dn"], r["cloud_id"], r["attribute"], r["value"])
        for r in findings.iter_rows(named=True)
    }


def dn(name: str) -> str:
    return f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"


def one(findings: pl.DataFrame, code: str) -> dict[str, Any]:
    rows = findings.filter(pl.col("code") == code).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def evidence(row: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(row["evidence"]))
