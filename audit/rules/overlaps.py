"""One cause, one line: which code reports a problem when two codes describe it on one object,
and the cause key that groups findings sharing one fix.

The overlap policy is this table. Most of its rows are kept inside the weaker rule (it never
emits the finding: "in rule"); the rows marked "classify" are applied after all rules ran, by
:func:`fold_overlaps`, which drops the weaker finding and records it in the stronger one's
evidence (``also``), so nothing is lost. docs/ARCHITECTURE.md and ``syncaudit explain`` show the
table from :func:`overlap_markdown` and :func:`overlaps_for`; each row names the test that holds
its exact findings on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

IN_RULE, CLASSIFY = "in rule", "classify"


@dataclass(frozen=True)
class Overlap:
    stronger: str  # the code that reports the cause
    weaker: str  # the code that does not report it again on that object
    same: str  # what "the same object" is
    when: str  # the condition, in words
    applied: str  # IN_RULE or CLASSIFY
    test: str  # tests/<file>::<test> with the exact findings on both sides


OVERLAPS: tuple[Overlap, ...] = (
    Overlap(
        "upn-suffix-unverified",
        "invalid-attribute",
        "AD user, attribute userPrincipalName",
        "the UPN's suffix can never be verified (its TLD is not delegated, IdFix's "
        "topleveldomain error): one fix, a routable suffix",
        CLASSIFY,
        "tests/rules/test_overlaps.py::test_a_local_upn_is_one_finding_about_its_suffix",
    ),
    Overlap(
        "anchor-held-by-deleted",
        "soft-match-pending",
        "AD user",
        "a soft-deleted user holds the anchor, so the pending soft match cannot happen",
        IN_RULE,
        "tests/rules/test_anchor_rules.py::test_classic_deleted_holder_with_waiting_cloud_only_user",
    ),
    Overlap(
        "upn-suffix-unverified",
        "upn-drift",
        "AD user and its matched cloud user",
        "the cloud UPN is the onmicrosoft.com fallback Entra gives an unverifiable suffix",
        IN_RULE,
        "tests/rules/test_drift_rules.py::"
        "test_never_verifiable_suffix_with_fallback_cloud_upn_is_not_upn_drift",
    ),
    Overlap(
        "attribute-conflict-cloud",
        "duplicate-cloud-account",
        "AD user and the cloud user owning its address",
        "the owner is synced from another AD user: a conflict, not a mergeable duplicate",
        IN_RULE,
        "tests/rules/test_duplicates_rules.py::"
        "test_attribute_conflict_with_synced_user_not_a_duplicate_account",
    ),
    Overlap(
        "soft-match-blocked",
        "hard-match-blocked",
        "AD user and its soft-match candidate",
        "the candidate is blocked only by an admin role: the roles detour is the fix",
        IN_RULE,
        "tests/rules/test_matching_rules.py::test_soft_match_blocked_admin_role",
    ),
    Overlap(
        "anchor-format-invalid",
        "cloud-orphan",
        "cloud user",
        "its immutableId is a wrongly encoded anchor, not one that no AD user has",
        IN_RULE,
        "tests/rules/test_anchor_rules.py::test_system_byte_array_literal_is_format_invalid",
    ),
)


def overlaps_for(code: str) -> list[Overlap]:
    return [o for o in OVERLAPS if code in (o.stronger, o.weaker)]


def overlap_markdown() -> str:
    """The policy as the Markdown table in docs/ARCHITECTURE.md (a test keeps them equal)."""
    lines = [
        "| reported as | not also as | on the same | when | applied | test |",
        "|---|---|---|---|---|---|",
    ]
    for o in OVERLAPS:
        lines.append(
            f"| `{o.stronger}` | `{o.weaker}` | {o.same} | {o.when} | {o.applied} | "
            f"`{o.test.split('::')[-1]}` |"
        )
    return "\n".join(lines) + "\n"


# --- applied after the rules ----------------------------------------------------------------------

_AD_KEY = pl.coalesce("ad_object_guid", "ad_dn")


def _upn_suffix_over_tld(findings: pl.DataFrame) -> pl.Expr:
    """Rows of invalid-attribute that upn-suffix-unverified reports (same AD user, UPN TLD)."""
    suffix_users = findings.filter(pl.col("code") == "upn-suffix-unverified").select(
        _AD_KEY.alias("_k")
    )["_k"]
    return (
        (pl.col("code") == "invalid-attribute")
        & (pl.col("attribute") == "userPrincipalName")
        & (pl.col("evidence").str.json_path_match("$.kind") == "topleveldomain")
        & _AD_KEY.is_in(suffix_users.implode())
    ).fill_null(False)


_FOLDS: dict[tuple[str, str], Callable[[pl.DataFrame], pl.Expr]] = {
    ("upn-suffix-unverified", "invalid-attribute"): _upn_suffix_over_tld,
}


def fold_overlaps(findings: pl.DataFrame) -> pl.DataFrame:
    """Apply the CLASSIFY rows: drop each weaker finding and list it (code, fingerprint,
    detail) under ``also`` in the evidence of the stronger finding on the same AD object."""
    for overlap in OVERLAPS:
        if overlap.applied != CLASSIFY or findings.is_empty():
            continue
        weaker = _FOLDS[(overlap.stronger, overlap.weaker)](findings)
        folded = findings.filter(weaker)
        if folded.is_empty():
            continue
        also: dict[str, list[dict[str, str]]] = {}
        for row in folded.select(_AD_KEY.alias("k"), "code", "fingerprint", "detail").iter_rows(
            named=True
        ):
            also.setdefault(row["k"], []).append(
                {"code": row["code"], "fingerprint": row["fingerprint"], "detail": row["detail"]}
            )
        texts = {k: json.dumps(v, ensure_ascii=False) for k, v in also.items()}
        extra = _AD_KEY.replace_strict(texts, default=None, return_dtype=pl.String)
        stronger = (pl.col("code") == overlap.stronger) & extra.is_not_null()
        evidence = (
            pl.when(pl.col("evidence").str.strip_chars().is_in(["", "{}"]).fill_null(True))
            .then(pl.concat_str([pl.lit('{"also":'), extra, pl.lit("}")]))
            .otherwise(
                pl.concat_str(
                    [
                        pl.col("evidence").str.strip_chars().str.strip_suffix("}"),
                        pl.lit(',"also":'),
                        extra,
                        pl.lit("}"),
                    ]
                )
            )
        )
        findings = findings.filter(~weaker).with_columns(
            evidence=pl.when(stronger).then(evidence).otherwise(pl.col("evidence"))
        )
    return findings


# --- causes ---------------------------------------------------------------------------------------


def _domain(column: str) -> pl.Expr:
    return pl.col(column).str.extract(r"@([^@]+)$").str.to_lowercase()


def cause_key() -> pl.Expr:
    """A stable key per finding: findings with one key share one cause and one fix (the same
    UPN suffix, the same invalid character kind in the same attribute, the same cloud holder,
    the same sync-scope exclusion, the same tenant setting); otherwise the code itself."""
    kind = pl.col("evidence").str.json_path_match("$.kind")
    code = pl.col("code")
    return (
        pl.when(code == "upn-suffix-unverified")
        .then(pl.concat_str([pl.lit("upn-suffix:"), _domain("ad_upn")]))
        .when((code == "invalid-attribute") & (kind == "topleveldomain"))
        .then(
            pl.concat_str(
                [
                    pl.lit("invalid-attribute:"),
                    pl.col("attribute"),
                    pl.lit(":tld:"),
                    pl.col("value").str.extract(r"\.([^.@]+)$").str.to_lowercase(),
                ]
            )
        )
        .when(code == "invalid-attribute")
        .then(pl.concat_str([pl.lit("invalid-attribute:"), pl.col("attribute"), pl.lit(":"), kind]))
        .when(
            (code == "cloud-orphan")
            & pl.col("evidence").str.json_path_match("$.out_of_scope_reason").is_not_null()
        )
        .then(
            # the same scope problem (an excluded OU, the filter) orphans all its accounts
            pl.concat_str(
                [
                    pl.lit("scope:"),
                    pl.col("evidence").str.json_path_match("$.out_of_scope_reason"),
                ]
            )
        )
        .when(code.is_in(["anchor-held-by-other", "attribute-conflict-cloud"]))
        .then(pl.concat_str([code, pl.lit(":"), pl.col("cloud_id")]))
        .when(code.is_in(["tenant-matching-settings", "tenant-sync-stale"]))
        .then(pl.concat_str([code, pl.lit(":"), pl.col("attribute")]))
        .otherwise(code)
        .fill_null(code)
        .alias("cause")
    )
