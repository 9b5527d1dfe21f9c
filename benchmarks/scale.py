"""Synthetic estates of any size, built column-wise with Polars (no per-user Python loops).

``generate_scale_estate(n_ad, n_cloud)`` gives a Snapshot conformed to the frame schemas: AD row
``i`` and cloud row ``i`` are the two halves of one synced user for ``i < min(n_ad, n_cloud)``;
extra AD rows are new hires not synced yet (``unmatched-ad``); extra cloud rows are clean
cloud-only users. A share ``issue_rate`` of the pairs carries exactly one planted problem,
chosen by a seeded hash of the row index, so the same arguments always give the same estate and
``expected_counts`` can say how many findings of each code to expect without generating it.

Planted problems (on even rows only, so that each duplicate has a clean odd partner):

============================ ===========================================================
category                     change                                  findings
============================ ===========================================================
cloud-orphan                 AD user moved to an excluded OU          1 cloud-orphan
soft-match-pending           cloud user never synced, no anchor       1 soft-match-pending
anchor-held-by-deleted       cloud user soft-deleted                  1 anchor-held-by-deleted
duplicate-ad-attribute       mailNickname copied from row i + 1       2 duplicate-ad-attribute
enabled-drift                AD user disabled, cloud user enabled     1 enabled-drift
invalid-attribute            an smtp alias with a space               1 invalid-attribute
============================ ===========================================================
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from audit.model import (
    AD_USERS_SCHEMA,
    CLOUD_OBJECTS_SCHEMA,
    CLOUD_USERS_SCHEMA,
    Domain,
    Feature,
    Snapshot,
    SourceReport,
    Tenant,
    TenantFeatures,
    conform,
    empty_frame,
)

SCALE_TAKEN_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
DOMAIN = "contoso.com"
INITIAL = "contoso.onmicrosoft.com"
MAIL_ROUTING = "contoso.mail.onmicrosoft.com"
BASE_DN = "DC=corp,DC=contoso,DC=com"
EXCLUDED_OU = f"OU=Disabled,{BASE_DN}"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"

CATEGORIES = (
    "cloud-orphan",
    "soft-match-pending",
    "anchor-held-by-deleted",
    "duplicate-ad-attribute",
    "enabled-drift",
    "invalid-attribute",
)
FINDINGS_PER_PLANT = {"duplicate-ad-attribute": 2}

_FIRST = (  # noqa: SIM905 (a word list reads better as text)
    "james mary robert patricia michael jennifer william linda david elizabeth richard "
    "barbara joseph susan thomas jessica charles sarah daniel karen matthew lisa anthony "
    "nancy mark"
).split()
_LAST = (  # noqa: SIM905 (a word list reads better as text)
    "anderson baker bennett brooks butler campbell carter clark collins cook cooper cox cruz "
    "edwards evans fisher flores foster gomez gray green hall harris hayes hill howard hughes"
).split()
_OUS = ("Staff", "Sales", "Engineering", "Finance")
_SCALE = 1_000_000  # resolution of the issue-rate draw


def generate_scale_estate(
    n_ad: int, n_cloud: int, issue_rate: float = 0.01, seed: int = 0
) -> Snapshot:
    """An estate of `n_ad` AD users and `n_cloud` active or soft-deleted cloud users."""
    if n_ad < 0 or n_cloud < 0:
        raise ValueError("n_ad and n_cloud must not be negative")
    if not 0.0 <= issue_rate <= 0.5:
        raise ValueError("issue_rate must be between 0 and 0.5")
    n_pairs = min(n_ad, n_cloud)
    ad = _ad_frame(n_ad, n_pairs, issue_rate, seed)
    cloud = _cloud_frame(ad, n_ad, n_cloud, n_pairs, issue_rate, seed)
    sources = tuple(
        SourceReport(name=kind, kind=kind, path=None, format="synthetic", complete=True, rows=rows)
        for kind, rows in (
            ("ad", n_ad),
            ("cloud", n_cloud),
            ("deleted", 0),
            ("domains", 3),
            ("tenant", 1),
        )
    )
    return Snapshot(
        ad_users=ad.drop("_category"),
        cloud_users=cloud,
        tenant=scale_tenant(),
        cloud_objects=empty_frame(CLOUD_OBJECTS_SCHEMA),
        sources=sources,
        taken_at=SCALE_TAKEN_AT.isoformat(),
    )


def expected_counts(
    n_ad: int, n_cloud: int, issue_rate: float = 0.01, seed: int = 0
) -> dict[str, int]:
    """Findings per code the planted problems cause (plus unmatched-ad for unsynced AD rows)."""
    n_pairs = min(n_ad, n_cloud)
    categories = (
        pl.DataFrame({"i": pl.int_range(n_ad, eager=True, dtype=pl.Int64)})
        .select(_category(n_pairs, issue_rate, seed).alias("c"))
        .get_column("c")
        .drop_nulls()
        .value_counts()
    )
    counts = dict.fromkeys(CATEGORIES, 0)
    for category, count in categories.iter_rows():
        counts[category] = count * FINDINGS_PER_PLANT.get(category, 1)
    counts["unmatched-ad"] = max(n_ad - n_cloud, 0)
    return counts


def scale_tenant() -> Tenant:
    return Tenant(
        tenant_id="00000000-0000-4000-8000-00000000c0de",
        initial_domain=INITIAL,
        domains=(
            Domain(DOMAIN, True, default=True),
            Domain(INITIAL, True, initial=True),
            Domain(MAIL_ROUTING, True),
        ),
        dirsync_enabled=True,
        last_dirsync=(SCALE_TAKEN_AT - timedelta(minutes=20)).isoformat(),
        features=TenantFeatures(
            block_soft_match=Feature(False, "graph"),
            block_hard_match_takeover=Feature(False, "graph"),
            soft_match_on_upn=Feature(True, "graph"),
        ),
    )


# -- columns ----------------------------------------------------------------------------------


def _category(n_pairs: int, issue_rate: float, seed: int) -> pl.Expr:
    """The planted category of row `i`, or null. Even rows only: odd rows stay clean partners."""
    i = pl.col("i")
    draw = i.hash(seed * 2 + 1) % _SCALE
    planted = (i % 2 == 0) & (i + 1 < n_pairs) & (draw < int(issue_rate * 2 * _SCALE))
    which = (i.hash(seed * 2 + 2) % len(CATEGORIES)).cast(pl.UInt32)
    names = pl.lit(pl.Series(CATEGORIES, dtype=pl.String))
    return pl.when(planted).then(names.gather(which))


def _guid(index: pl.Expr, seed: int) -> pl.Expr:
    """A unique, random-looking version-4 GUID text per index (decimal digits are hex too)."""
    digits = index.hash(seed).cast(pl.String).str.zfill(20)
    return pl.concat_str(
        digits.str.slice(0, 8),
        pl.lit("-"),
        digits.str.slice(8, 4),
        pl.lit("-4"),
        digits.str.slice(12, 3),
        pl.lit("-8"),
        digits.str.slice(15, 3),
        pl.lit("-"),
        index.cast(pl.String).str.zfill(12),
    )


def _immutable_id(guid: pl.Expr) -> pl.Expr:
    """base64 of the GUID's .NET byte order (Guid.ToByteArray = UUID.bytes_le)."""
    h = guid.str.replace_all("-", "", literal=True)
    little_endian = pl.concat_str(
        h.str.slice(6, 2),
        h.str.slice(4, 2),
        h.str.slice(2, 2),
        h.str.slice(0, 2),
        h.str.slice(10, 2),
        h.str.slice(8, 2),
        h.str.slice(14, 2),
        h.str.slice(12, 2),
        h.str.slice(16, 16),
    )
    return little_endian.str.decode("hex").bin.encode("base64")


def _pick(words: list[str], index: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(words, dtype=pl.String)).gather(index % len(words))


def _ad_frame(n_ad: int, n_pairs: int, issue_rate: float, seed: int) -> pl.DataFrame:
    now = pl.lit(SCALE_TAKEN_AT)
    base = pl.LazyFrame({"i": pl.int_range(n_ad, eager=True, dtype=pl.Int64)}).with_columns(
        _category=_category(n_pairs, issue_rate, seed),
        object_guid=_guid(pl.col("i"), seed * 7 + 11),
        first=_pick(_FIRST, pl.col("i")),
        last=_pick(_LAST, pl.col("i") // len(_FIRST)),
        given=_pick([w.title() for w in _FIRST], pl.col("i")),
        sn=_pick([w.title() for w in _LAST], pl.col("i") // len(_FIRST)),
        ou=_pick(list(_OUS), pl.col("i").hash(seed + 5)),
        age_days=(pl.col("i").hash(seed + 3) % 3000 + 30).cast(pl.Int64),
    )
    category = pl.col("_category")
    alias = pl.concat_str(pl.col("first"), pl.lit("."), pl.col("last"), pl.col("i").cast(pl.String))
    upn = pl.concat_str(alias, pl.lit(f"@{DOMAIN}"))
    # Pairs beyond n_cloud are new hires (created this week): unmatched-ad at info severity.
    created = (
        pl.when(pl.col("i") >= n_pairs)
        .then(now - pl.duration(hours=12))
        .otherwise(now - pl.duration(days=pl.col("age_days")))
    )
    enabled = category.ne_missing("enabled-drift")
    out_of_scope = category.eq_missing("cloud-orphan")
    smtp_alias = pl.concat_str(pl.lit("smtp:"), alias, pl.lit(f"@{MAIL_ROUTING}"))
    bad_alias = pl.concat_str(
        pl.lit("smtp:"),
        pl.col("first"),
        pl.lit(" "),
        pl.col("last"),
        pl.col("i").cast(pl.String),
        pl.lit(f"@{DOMAIN}"),
    )
    proxies = (
        pl.when(category.eq_missing("invalid-attribute"))
        .then(pl.concat_list(pl.concat_str(pl.lit("SMTP:"), upn), smtp_alias, bad_alias))
        .otherwise(pl.concat_list(pl.concat_str(pl.lit("SMTP:"), upn), smtp_alias))
    )
    anchor = _immutable_id(pl.col("object_guid"))
    with_consistency = pl.col("i").hash(seed + 9) % 2 == 0
    frame = base.with_columns(
        source=pl.lit("corp"),
        dn=pl.concat_str(
            pl.lit("CN="),
            pl.col("given"),
            pl.lit(" "),
            pl.col("sn"),
            pl.lit(" "),
            pl.col("i").cast(pl.String),
            pl.when(out_of_scope)
            .then(pl.lit(f",{EXCLUDED_OU}"))
            .otherwise(pl.concat_str(pl.lit(",OU="), pl.col("ou"), pl.lit(f",OU=Users,{BASE_DN}"))),
        ),
        consistency_guid=pl.when(with_consistency).then(anchor),
        anchor=anchor,
        anchor_attribute=pl.when(with_consistency)
        .then(pl.lit("mS-DS-ConsistencyGuid"))
        .otherwise(pl.lit("objectGUID")),
        sam_account_name=pl.concat_str(pl.lit("u"), pl.col("i").cast(pl.String)),
        upn=upn,
        mail=upn,
        mail_nickname=pl.when(category.eq_missing("duplicate-ad-attribute"))
        .then(alias.shift(-1))
        .otherwise(alias),
        proxy_addresses=proxies,
        primary_smtp=upn,
        display_name=pl.concat_str(pl.col("given"), pl.lit(" "), pl.col("sn")),
        given_name=pl.col("given"),
        surname=pl.col("sn"),
        employee_id=pl.col("i").cast(pl.String),
        enabled=enabled,
        user_account_control=pl.when(enabled).then(pl.lit(512)).otherwise(pl.lit(514)),
        object_sid=pl.concat_str(pl.lit(f"{DOMAIN_SID}-"), (pl.col("i") + 1100).cast(pl.String)),
        when_created=created,
        when_changed=now - pl.duration(days=(pl.col("i").hash(seed + 4) % 30).cast(pl.Int64)),
        last_logon=now - pl.duration(hours=(pl.col("i").hash(seed + 6) % 200).cast(pl.Int64)),
        is_critical_system_object=pl.lit(False),
        in_scope=~out_of_scope,
        out_of_scope_reason=pl.when(out_of_scope).then(pl.lit(f"excluded OU {EXCLUDED_OU}")),
    )
    schema = {**AD_USERS_SCHEMA, "_category": pl.String()}
    return conform(frame.collect(), schema)


def _cloud_frame(
    ad: pl.DataFrame, n_ad: int, n_cloud: int, n_pairs: int, issue_rate: float, seed: int
) -> pl.DataFrame:
    now = pl.lit(SCALE_TAKEN_AT)
    last_sync = (
        now
        - pl.duration(minutes=20)
        - pl.duration(seconds=(pl.col("i").hash(seed) % 1800).cast(pl.Int64))
    )
    pairs = ad.lazy().head(n_pairs).with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    category = pl.col("_category")
    never_synced = category.eq_missing("soft-match-pending")
    deleted = category.eq_missing("anchor-held-by-deleted")
    synced = pl.when(never_synced).then(pl.lit(None))
    # The cloud user has only the valid addresses (Exchange Online rejects the one with a space).
    proxies = pl.col("proxy_addresses").list.filter(~pl.element().str.contains(" ", literal=True))
    paired = pairs.select(
        id=_guid(pl.col("i"), seed * 7 + 13),
        upn=pl.col("upn"),
        mail=pl.col("mail"),
        mail_nickname=pl.col("upn").str.split("@").list.first(),
        proxy_addresses=proxies,
        primary_smtp=pl.col("primary_smtp"),
        display_name=pl.col("display_name"),
        immutable_id=synced.otherwise(pl.col("anchor")),
        sync_enabled=synced.otherwise(pl.lit(True)),
        last_sync=synced.otherwise(last_sync),
        on_prem_dn=synced.otherwise(pl.col("dn")),
        on_prem_sam=synced.otherwise(pl.col("sam_account_name")),
        on_prem_sid=synced.otherwise(pl.col("object_sid")),
        on_prem_upn=synced.otherwise(pl.col("upn")),
        on_prem_domain=synced.otherwise(pl.lit("corp.contoso.com")),
        account_enabled=pl.when(deleted).then(pl.lit(False)).otherwise(pl.lit(True)),
        on_prem_object_id=synced.otherwise(pl.col("object_guid")),
        created=pl.col("when_created") + pl.duration(minutes=45),
        user_type=pl.lit("Member"),
        employee_id=pl.col("employee_id"),
        deleted_at=pl.when(deleted).then(now - pl.duration(days=pl.col("i") % 29 + 1)),
    )
    # Cloud-only users: rooms, shared mailboxes, users created in the portal. Clean.
    extra = pl.LazyFrame(
        {"i": pl.int_range(n_pairs, n_cloud, eager=True, dtype=pl.Int64)}
    ).with_columns(
        upn=pl.concat_str(pl.lit("cloud"), pl.col("i").cast(pl.String), pl.lit(f"@{DOMAIN}"))
    )
    cloud_only = extra.select(
        id=_guid(pl.col("i"), seed * 7 + 13),
        upn=pl.col("upn"),
        mail=pl.col("upn"),
        mail_nickname=pl.col("upn").str.split("@").list.first(),
        proxy_addresses=pl.concat_list(pl.concat_str(pl.lit("SMTP:"), pl.col("upn"))),
        primary_smtp=pl.col("upn"),
        display_name=pl.concat_str(pl.lit("Cloud user "), pl.col("i").cast(pl.String)),
        account_enabled=pl.lit(True),
        created=now - pl.duration(days=(pl.col("i").hash(seed + 8) % 2000 + 1).cast(pl.Int64)),
        user_type=pl.lit("Member"),
    )
    frames = [
        conform(paired.collect(), CLOUD_USERS_SCHEMA),
        conform(cloud_only.collect(), CLOUD_USERS_SCHEMA),
    ]
    cloud = pl.concat(frames, how="vertical")
    empty_list = pl.lit([], dtype=pl.List(pl.String()))
    return cloud.with_columns(
        provisioning_errors=pl.lit([], dtype=CLOUD_USERS_SCHEMA["provisioning_errors"]),
        directory_roles=empty_list,
        admin_roles=empty_list,
        eligible_roles=empty_list,
    )
