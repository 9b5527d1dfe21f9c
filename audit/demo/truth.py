"""The ground truth: the findings the demo estate must produce, and how a finding is keyed.

A finding is identified by ``(code, key)`` where key is the finding's ``ad_dn`` when it names an
AD user, else its ``cloud_id``, else its ``attribute`` (tenant-wide findings: the switch or
setting name), else ``"tenant"``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from audit.demo.plants import build_estate


def expected_findings() -> frozenset[tuple[str, str]]:
    """The ground truth: every (code, key) the demo estate must produce, and nothing else."""
    return frozenset(build_estate().expected)


def finding_key(row: dict[str, Any]) -> str:
    """The key of one finding: AD DN, else cloud id, else attribute, else "tenant"."""
    for column in ("ad_dn", "cloud_id", "attribute"):
        value = row.get(column)
        if value:
            return str(value)
    return "tenant"


def finding_keys(findings: pl.DataFrame) -> frozenset[tuple[str, str]]:
    """The (code, key) pairs of a findings frame, comparable with ``expected_findings()``."""
    keyed = findings.select(
        pl.col("code"),
        pl.coalesce(
            pl.col("ad_dn").replace("", None),
            pl.col("cloud_id").replace("", None),
            pl.col("attribute").replace("", None),
            pl.lit("tenant"),
        ).alias("key"),
    )
    return frozenset(keyed.iter_rows())
