r"""IdFix's multi-tenant rules (FACTS.md 4) as vectorised Polars checks: ``invalid-attribute``.

One finding per (in-scope AD user, attribute, value, error kind). Every value is checked with
Polars string expressions over whole columns; only the values that fail go on to the (more
expensive) proposal step, so a clean estate costs one pass per attribute. Those checks and fixes,
per attribute, are rules/idfix_values.py; this module runs them over the in-scope AD users and
withdraws a proposal another object already has.

Decisions, chosen to keep false positives (IdFix users' main complaint) down:

* userPrincipalName: max 113 characters, 64 before the ``@`` and 48 after; invalid characters
  ``\s \ % & * + / = ? { } | < > ( ) ; : , [ ] "`` and any non-ASCII character (diacritics);
  the apostrophe is valid (Microsoft lists ``'`` among the allowed characters; IdFix still
  flags it). The RFC 2822 shape is checked on the value with those characters removed, so a
  space is reported once (character), not also as localpart/format. A blank UPN is not flagged:
  Entra Connect then uses ``sAMAccountName@<domain>``.
* Top-level domains: an allow-list of the TLDs IANA has delegated (:mod:`audit.tlds`, bundled
  with its date), so every internal suffix (.local, .lan, .lab, .loc, .corp, .internal...) is
  caught and every real one (.app, .dev, .online...) passes. Checked for the UPN, the primary
  ``SMTP:`` proxy and an SMTP targetAddress: Entra drops secondary ``smtp:`` addresses in
  domains that are not verified ("only values for verified domains appear", ProxyCalc,
  entra-docs how-to-connect-syncservice-shadow-attributes.md), so the ubiquitous
  ``smtp:user@corp.local`` is no error (IdFix checks every smtp value).
* proxyAddresses: ``smtp:`` values: invalid ``\s < > ( ) ; , [ ] "`` (an apostrophe is valid in
  an SMTP local part) and the RFC 2822 shape; X400/X500: invalid ``\f \n \r \t \v [ ] " '``
  (spaces and parentheses are normal in X500 DNs); any other prefix (SIP:, EUM:) or none:
  invalid ``\s < > ( ) , [ ] "``; any prefix: a ``:`` after the prefix's colon.
* targetAddress: max 256; ``SMTP:`` values: invalid ``\s \ < > ( ) ; , [ ] "`` and the RFC 2822
  shape with the TLD; other prefixes ``\s \ < > ( ) , [ ] "``; a ``:`` after the prefix's
  colon. Its address shares the uniqueness space of UPN, mail and proxyAddresses (rules.joins).
* sAMAccountName (invalid ``\ " | , / [ ] : < > + = ; ? * '``, max 20) is checked only when the
  user's UPN is blank or itself fails a rule: Microsoft's prep doc ("If a user has an invalid
  sAMAccountName attribute but has a valid userPrincipalName attribute, the user account is
  created"); IdFix checks it always, and without the apostrophe.
* displayName blank is flagged only when the snapshot carries displayName at all (an export
  without the column would otherwise make every user a finding). Blank givenName, mail,
  mailNickname are fine.
* Which objects are checked is decided once, at import (sources.files: computers, critical
  system objects, replication conflicts, Exchange system mailboxes, and what Entra Connect's
  default sync rules leave out of scope): the rule checks every in-scope user. IdFix's own skip
  list matches bare cn prefixes (Guest, iwam, msol, Admini) that also catch people (Guestrin,
  Iwamoto), so it is not repeated here.
* Proposed value: one cumulative fix per value (transliterate diacritics, strip invalid
  characters, clean the local/domain parts, truncate the local part or the text), shown on a
  finding only when the fixed value passes every rule of its attribute except the top-level
  domain (which no string edit can fix: that needs a verified routable suffix, a human choice),
  and when no other object already has it: a UPN, mail, proxy or targetAddress fix must not take
  an address another AD or cloud object owns (the next sync could soft-match or quarantine onto
  it), nor a mailNickname or sAMAccountName fix another user's. Such a fix becomes a manual step
  that names the collision. The fix is idempotent; without a proposal the remediation is manual.
"""

from __future__ import annotations

import polars as pl

from audit.model import Action, RuleMeta, Severity
from audit.rules import addresses, joins, shape
from audit.rules.base import Rule, RuleContext
from audit.rules.idfix_values import (
    CONTEXT_COLUMNS,
    ID_COLUMNS,
    KIND_TEXT,
    SPECS,
    failures,
)

FAMILY = "attributes"

INVALID_ATTRIBUTE = RuleMeta(
    code="invalid-attribute",
    action="Correct the attribute values in AD (a proposed value is given).",
    severity=Severity.medium,
    family=FAMILY,
    title="Attribute value fails an IdFix rule",
    explanation=(
        "An attribute of an in-scope AD user breaks one of the rules Microsoft's IdFix tool "
        "checks before directory synchronization (multi-tenant rule set): a character Entra ID "
        "does not accept, a value that is too long, a blank displayName, or an address that is "
        "not shaped like local@domain (format, localpart, domainpart) or ends in a "
        "non-routable top-level domain such as .local. Entra Connect Health reports these as "
        "Data Validation Failure (IdentityDataValidationFailed) or the value is silently "
        "replaced: a UPN with invalid characters or an unroutable suffix becomes "
        "<mailNickname>@<tenant>.onmicrosoft.com. The error kind is in the evidence; the "
        "proposed value is the IdFix-style fix (diacritics transliterated, invalid characters "
        "stripped, text truncated). IdFix itself is unsupported from 30 June 2026."
    ),
    remediation=(
        "Review the proposed value, then set it on-premises: "
        "Set-ADUser -Identity <dn> -UserPrincipalName <value> (or -Replace @{<attribute>="
        "'<value>'}; for one proxyAddresses value -Remove @{proxyAddresses='<old>'} "
        "-Add @{proxyAddresses='<new>'}), and run Start-ADSyncSyncCycle -PolicyType Delta. A "
        "non-routable suffix needs a routable UPN suffix added in Active Directory Domains and "
        "Trusts and verified in the tenant first. Keep the old values (the remediation script "
        "writes an undo file) in case an application depends on them."
    ),
    references=(
        "https://learn.microsoft.com/microsoft-365/enterprise/prepare-directory-attributes-for-synch-with-idfix",
        "https://learn.microsoft.com/microsoft-365/enterprise/prepare-for-directory-synchronization",
        "https://github.com/microsoft/idfix",
    ),
    remediation_actions=(Action.ad_set_attribute, Action.manual),
)


def invalid_attribute(ctx: RuleContext) -> pl.DataFrame:
    users = ctx.in_scope_ad
    if not users.height:
        return pl.DataFrame()
    blank_known = users.get_column("display_name").null_count() < users.height
    context = users.select(*CONTEXT_COLUMNS)
    parts: list[pl.DataFrame] = []
    for spec in SPECS.values():
        if spec.column == "proxy_addresses":
            values = (
                users.select(
                    pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), "proxy_addresses"
                )
                .explode("proxy_addresses")
                .rename({"proxy_addresses": "value"})
                .filter(pl.col("value").is_not_null())
            )
            # cheap pass first on the narrow frame, then attach the user columns
            assert spec.suspect is not None
            values = values.filter(spec.suspect(pl.col("value")))
            values = values.join(context.with_row_index("_row"), on="_row", how="left").drop("_row")
        else:
            values = context.with_columns(value=users.get_column(spec.column))
        found = failures(spec, values, blank_known=blank_known)
        if found.height:
            parts.append(
                found.select(*ID_COLUMNS, "value", "kind", "proposed").with_columns(
                    attribute=pl.lit(spec.attribute), _limits=pl.lit(spec.limits)
                )
            )
    if not parts:
        return pl.DataFrame()
    findings = pl.concat(parts, how="vertical")
    # sAMAccountName only matters when the UPN cannot be used (blank or itself invalid).
    upn_failed = findings.filter(pl.col("attribute") == "userPrincipalName").select("source", "dn")
    sam = findings.filter(pl.col("attribute") == "sAMAccountName")
    if sam.height:
        blank_upn = pl.col("upn").is_null() | (pl.col("upn").str.strip_chars() == "")
        sam = pl.concat(
            [
                sam.filter(blank_upn),
                sam.filter(~blank_upn).join(upn_failed.unique(), on=["source", "dn"], how="semi"),
            ]
        )
    findings = pl.concat([findings.filter(pl.col("attribute") != "sAMAccountName"), sam])
    findings = findings.unique(
        subset=["source", "dn", "attribute", "value", "kind"], keep="first", maintain_order=True
    )
    if not findings.height:
        return pl.DataFrame()
    findings = _without_taken_proposals(ctx, findings)
    message = pl.col("kind").replace_strict(KIND_TEXT, return_dtype=pl.String)
    message = (
        pl.when(pl.col("kind") == "length")
        .then(pl.format("{} (max {})", message, "_limits"))
        .otherwise(message)
    )
    shown = pl.coalesce(pl.col("value"), pl.lit(""))
    base = pl.format("{} '{}' of AD user {} {}", "attribute", shown, "dn", message)
    detail = (
        pl.when(pl.col("proposed").is_not_null())
        .then(pl.format("{}; proposed '{}'.", base, "proposed"))
        .when(pl.col("_taken_by").is_not_null())
        .then(
            pl.format(
                "{}; the fix '{}' is not proposed: {} already has it, so the value needs a "
                "human choice.",
                base,
                "_rejected",
                "_taken_by",
            )
        )
        .otherwise(pl.format("{}.", base))
    )
    return findings.select(
        detail.alias("detail"),
        pl.col("source").alias("ad_source"),
        pl.col("dn").alias("ad_dn"),
        pl.col("object_guid").alias("ad_object_guid"),
        pl.col("upn").alias("ad_upn"),
        "anchor",
        pl.lit("none").alias("cloud_state"),
        "attribute",
        "value",
        pl.col("proposed").alias("proposed_value"),
        shape.evidence(
            kind=pl.col("kind"),
            rule=pl.lit("IdFix multi-tenant"),
            attribute=pl.col("attribute"),
            limits=pl.when(pl.col("kind") == "length").then(pl.col("_limits")),
            reason=message,
            rejected_proposal=pl.col("_rejected"),
            proposal_taken_by=pl.col("_taken_by"),
        ),
        pl.when(pl.col("proposed").is_not_null())
        .then(pl.lit(Action.ad_set_attribute))
        .otherwise(pl.lit(Action.manual))
        .alias("remediation"),
    )


# --- proposals that would take someone else's value ----------------------------------------

# Attributes whose values share Entra's uniqueness space (UPN, mail, smtp proxies,
# targetAddress): a fix must not take an address another object owns.
_ADDRESS_ATTRIBUTES = ("userPrincipalName", "mail", "proxyAddresses", "targetAddress")


def _proposal_key() -> pl.Expr:
    """What a proposed value claims: its lower-cased address (smtp proxies and targetAddress
    without the prefix), the nickname or the sAMAccountName; null when it claims nothing."""
    proposed = pl.col("proposed")
    attribute = pl.col("attribute")
    return (
        pl.when(attribute.is_in(["userPrincipalName", "mail", "mailNickname", "sAMAccountName"]))
        .then(proposed.str.to_lowercase())
        .when(attribute.is_in(["proxyAddresses", "targetAddress"]))
        .then(addresses.target_smtp("proposed").str.to_lowercase())
    )


def _owners(ctx: RuleContext, keys: dict[str, list[str]]) -> pl.DataFrame:
    """(space, key, owner_source, owner_dn, owner_cloud_id, owner): every AD user (in scope or
    not) and active cloud object holding one of `keys` (space -> keys). The address keys the
    duplicate and conflict rules already built are reused; only the few matching rows are
    widened, and a space without proposals is not searched."""
    proposed = keys.get("address", [])
    wanted = pl.col("key").is_in(proposed)
    scoped = ctx.scoped_ad.select(joins.AD_KEY, "source", "dn")
    in_scope = (
        ctx.ad_address_keys.rename({"address": "key"})
        .filter(wanted)
        .join(scoped, on=joins.AD_KEY)
        .select("source", "dn", "key")
    )
    outside = ctx.out_of_scope_ad.select(
        "source", "dn", "upn", "mail", "proxy_addresses", addresses.target_smtp().alias("_target")
    ).with_row_index("_o")
    out_of_scope = (
        addresses.address_keys(outside, "_o", ("upn", "mail", "_target"))
        .collect()
        .rename({"address": "key"})
        .filter(wanted)
        .join(outside.select("_o", "source", "dn"), on="_o")
        .select("source", "dn", "key")
    )
    names = [
        ctx.ad.select("source", "dn", pl.col(column).str.to_lowercase().alias("key"))
        .filter(pl.col("key").is_in(keys[space]))
        .with_columns(space=pl.lit(space))
        for column, space in (
            ("mail_nickname", "mailNickname"),
            ("sam_account_name", "sAMAccountName"),
        )
        if keys.get(space)
    ]
    from_ad = pl.concat(
        [
            pl.concat([in_scope, out_of_scope]).with_columns(space=pl.lit("address")),
            *names,
        ],
        how="diagonal",
    ).select(
        "space",
        "key",
        pl.col("source").alias("owner_source"),
        pl.col("dn").alias("owner_dn"),
        pl.lit(None, pl.String).alias("owner_cloud_id"),
        pl.format("AD user {}", "dn").alias("owner"),
    )
    cloud = ctx.active_cloud
    objects = ctx.snapshot.cloud_objects
    owned = pl.concat(
        [
            ctx.cloud_address_keys.rename({"address": "key"})
            .filter(wanted)
            .with_columns(space=pl.lit("address")),
            cloud.select("id", pl.col("mail_nickname").str.to_lowercase().alias("key"))
            .filter(pl.col("key").is_in(keys.get("mailNickname", [])))
            .with_columns(space=pl.lit("mailNickname")),
        ]
    )
    described = pl.concat(
        [
            cloud.join(owned.select("id").unique(), on="id", how="semi").select(
                "id", pl.format("cloud user {} (id {})", "upn", "id").alias("owner")
            ),
            objects.join(owned.select("id").unique(), on="id", how="semi").select(
                "id",
                pl.format(
                    "cloud {} {} (id {})",
                    "object_type",
                    pl.coalesce("mail", "display_name"),
                    "id",
                ).alias("owner"),
            ),
        ]
    )
    from_cloud = owned.join(described, on="id").select(
        "space",
        "key",
        pl.lit(None, pl.String).alias("owner_source"),
        pl.lit(None, pl.String).alias("owner_dn"),
        pl.col("id").alias("owner_cloud_id"),
        "owner",
    )
    return pl.concat([from_ad, from_cloud])


def _without_taken_proposals(ctx: RuleContext, findings: pl.DataFrame) -> pl.DataFrame:
    """Withdraw a proposed value another object already has (its own values and its own
    cloud account's do not count): ``_rejected`` keeps the fix, ``_taken_by`` names the owner.

    Without this a fix of `SMTP:cfö@contoso.com` would be `SMTP:cfo@contoso.com`, the CFO's
    address, which the next sync could soft-match onto the CFO's account."""
    findings = findings.with_columns(
        _key=_proposal_key(),
        _space=pl.when(pl.col("attribute").is_in(_ADDRESS_ATTRIBUTES))
        .then(pl.lit("address"))
        .otherwise(pl.col("attribute")),
    )
    claimed = findings.select("_space", "_key").drop_nulls().unique()
    keys: dict[str, list[str]] = {}
    for space, key in claimed.iter_rows():
        keys.setdefault(space, []).append(key)
    none = findings.with_columns(
        _rejected=pl.lit(None, pl.String), _taken_by=pl.lit(None, pl.String)
    ).drop("_key", "_space")
    if not keys:
        return none
    anchors = findings.get_column("anchor").drop_nulls().unique()
    holders = ctx.active_cloud.select(
        pl.col("immutable_id").alias("anchor"), pl.col("id").alias("_own_cloud_id")
    ).filter(pl.col("anchor").is_in(anchors.implode()))
    owners = _owners(ctx, keys)
    same_domain = pl.col("_space") != "sAMAccountName"  # sAMAccountName: unique per domain
    taken = (
        findings.select("source", "dn", "anchor", "attribute", "value", "kind", "_key", "_space")
        .filter(pl.col("_key").is_not_null())
        .join(holders, on="anchor", how="left")
        .join(owners, left_on=["_space", "_key"], right_on=["space", "key"])
        .filter(
            ~(
                (pl.col("owner_source") == pl.col("source")) & (pl.col("owner_dn") == pl.col("dn"))
            ).fill_null(False)
            & ~(pl.col("owner_cloud_id") == pl.col("_own_cloud_id")).fill_null(False)
            & (same_domain | (pl.col("owner_source") == pl.col("source")).fill_null(False))
        )
        .group_by("source", "dn", "attribute", "value", "kind")
        .agg(pl.col("owner").sort().first().alias("_taken_by"))
    )
    return (
        findings.drop("_key", "_space")
        .join(taken, on=["source", "dn", "attribute", "value", "kind"], how="left")
        .with_columns(
            _rejected=pl.when(pl.col("_taken_by").is_not_null()).then(pl.col("proposed")),
            proposed=pl.when(pl.col("_taken_by").is_null()).then(pl.col("proposed")),
        )
    )


RULES: tuple[Rule, ...] = (Rule(INVALID_ATTRIBUTE, invalid_attribute),)
