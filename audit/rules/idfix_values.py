"""IdFix's multi-tenant checks of attribute values, and the fix proposed for a failing value,
as Polars expressions over whole columns: the character sets and length limits, one spec per
attribute (which error kinds a value has, and its cumulative fix), and the engine that turns a
frame of values into one row per failed kind with its proposal. No snapshot: the rule that runs
them over the in-scope AD users, and withdraws a proposal another object already has, is
rules/idfix.py, whose docstring gives the decisions behind each check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from audit import tlds

_ATEXT = r"a-zA-Z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL_RE = rf"^[{_ATEXT}]+(?:\.[{_ATEXT}]+)*$"
_DOMAIN_RE = r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z]{2,17}$"
_NOT_LOCAL_CHAR = rf"[^.{_ATEXT}]"
_NOT_DOMAIN_CHAR = r"[^a-zA-Z0-9.-]"
NON_ASCII = r"[^\x00-\x7F]"
# Microsoft: "Invalid characters: \ % & * + / = ? { } | < > ( ) ; : , [ ] \"" and "Characters
# allowed: A - Z, a - z, 0 - 9, ' . - _ ! # ^ ~" (prepare-for-directory-synchronization.md;
# concept-sspr-policy.md lists the same allowed set). No apostrophe here.
UPN_INVALID = r"""[\s\\%&*+/=?{}|<>();:,\[\]"]"""
_SMTP_INVALID = r"""[\s<>();,\[\]"]"""
_X400_X500_INVALID = r"""[\f\n\r\t\v\[\]"']"""
_OTHER_PROXY_INVALID = r"""[\s<>(),\[\]"]"""
_TARGET_SMTP_INVALID = r"""[\s\\<>();,\[\]"]"""
_TARGET_OTHER_INVALID = r"""[\s\\<>(),\[\]"]"""
_SAM_INVALID = r"""[\\"|,/\[\]:<>+=;?*']"""

# Fast pre-filters: a value matching one of these passes every rule of its attribute, so only
# the (rare) others are evaluated in detail. Each is a strict subset of the valid values.
_UPN_ATEXT = r"A-Za-z0-9!#$^_`~'-"  # atext minus the UPN-invalid characters
_CLEAN_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,17}"
_CLEAN_UPN_RE = rf"^[{_UPN_ATEXT}]+(?:\.[{_UPN_ATEXT}]+)*@{_CLEAN_DOMAIN}$"
_CLEAN_SMTP_RE = rf"^(?i:smtp):[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@{_CLEAN_DOMAIN}$"
_CLEAN_X_PROXY_RE = r"^[^:]*:[^:\f\n\r\t\v\[\]\"']*$"
_CLEAN_OTHER_PROXY_RE = r"^[^:]*:[^:\s<>(),\[\]\"]*$"
_SMTP_PREFIX_RE = r"^(?i:smtp):"
_X_PREFIX_RE = r"^(?i:x\.?[45]00):"


def _tld(value: pl.Expr) -> pl.Expr:
    """Lower-case last label of the part after the last '@' (null without '@' or '.')."""
    return value.str.extract(r"@[^@]*\.([^.@]+)$").str.to_lowercase()


def _tld_delegated(value: pl.Expr) -> pl.Expr:
    return value.str.contains(tlds.delegated_suffix_pattern())


KIND_TEXT = {
    "blank": "is blank",
    "length": "is too long",
    "character": "contains characters Entra ID does not accept",
    "format": "is not shaped like local@domain",
    "localpart": "has an invalid part before the @",
    "domainpart": "has an invalid domain part",
    "topleveldomain": "ends in a non-routable top-level domain",
}

Kinds = dict[str, pl.Expr]


@dataclass(frozen=True)
class _Spec:
    attribute: str  # LDAP name, as reported
    column: str  # ad_users column
    limits: str  # human text for the length rule
    kinds: Callable[[pl.Expr], Kinds]  # value -> {kind: failed}
    fix: Callable[[pl.Expr], pl.Expr]  # value -> cumulative fix (may use _cn/given/surname)
    check_null: bool = False  # a missing value is itself an error (displayName)
    # cheap superset of the failing values (None: evaluate every value in detail)
    suspect: Callable[[pl.Expr], pl.Expr] | None = None


# --- expression helpers --------------------------------------------------------------------


def _local(value: pl.Expr) -> pl.Expr:
    """Everything before the last '@'."""
    return value.str.replace(r"@[^@]*$", "")


def _domain(value: pl.Expr) -> pl.Expr:
    """Everything after the last '@' (null without '@')."""
    return value.str.extract(r"@([^@]*)$")


def _transliterate(value: pl.Expr) -> pl.Expr:
    """é -> e, ä -> a; what does not decompose to ASCII is dropped."""
    return value.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.replace_all(NON_ASCII, "")


def _address_shape(
    clean: pl.Expr, *, check_tld: pl.Expr | bool, check_format: bool = True
) -> Kinds:
    """RFC 2822 shape of an address whose invalid characters were already removed."""
    has_at = clean.str.contains("@", literal=True)
    local = _local(clean)
    domain = _domain(clean)
    kinds: Kinds = {
        "localpart": has_at
        & (~local.str.contains(_LOCAL_RE) | (clean.str.count_matches("@", literal=True) > 1)),
        "domainpart": has_at & ~domain.str.contains(_DOMAIN_RE),
        # a domain without a dot has no TLD to judge (domainpart already says it is wrong)
        "topleveldomain": has_at
        & _tld(clean).is_not_null()
        & ~_tld_delegated(clean).fill_null(True)
        & check_tld,
    }
    if check_format:
        kinds["format"] = ~has_at
    return kinds


def _address_fix(
    value: pl.Expr, invalid: str, *, max_total: pl.Expr | int, max_local: int
) -> pl.Expr:
    """Transliterate, strip invalid characters, clean both parts, fit the local part."""
    clean = _transliterate(value).str.replace_all(invalid, "")
    local = (
        _local(clean)
        .str.replace_all(_NOT_LOCAL_CHAR, "")
        .str.replace_all(r"\.{2,}", ".")
        .str.strip_chars(".")
    )
    domain = (
        _domain(clean)
        .str.replace_all(_NOT_DOMAIN_CHAR, "")
        .str.replace_all(r"\.{2,}", ".")
        .str.strip_chars(".-")
    )
    total = max_total if isinstance(max_total, pl.Expr) else pl.lit(max_total)
    budget = pl.min_horizontal(pl.lit(max_local), total - 1 - domain.str.len_chars()).clip(0)
    local = local.str.head(budget).str.strip_chars_end(".")
    return (
        pl.when(clean.str.contains("@", literal=True))
        .then(pl.concat_str([local, pl.lit("@"), domain]))
        .otherwise(clean)
    )


def _truncate(value: pl.Expr, limit: int) -> pl.Expr:
    return value.str.head(limit)


def _fallback_cn(fixed: pl.Expr, cleaned_cn: pl.Expr) -> pl.Expr:
    return pl.when(fixed == "").then(cleaned_cn).otherwise(fixed)


# --- per attribute -------------------------------------------------------------------------


def _upn_kinds(value: pl.Expr) -> Kinds:
    clean = _transliterate(value).str.replace_all(UPN_INVALID, "")
    return {
        "length": (value.str.len_chars() > 113)
        | (_local(value).str.len_chars() > 64)
        | (_domain(value).str.len_chars() > 48),
        "character": value.str.contains(UPN_INVALID) | value.str.contains(NON_ASCII),
        **_address_shape(clean, check_tld=True),
    }


def _upn_suspect(value: pl.Expr) -> pl.Expr:
    # 48 characters in total cannot exceed 64 before or 48 after the @
    clean = (
        value.str.contains(_CLEAN_UPN_RE)
        & (value.str.len_bytes() <= 48)
        & _tld_delegated(value).fill_null(False)
    )
    return ~clean


def _upn_fix(value: pl.Expr) -> pl.Expr:
    return _address_fix(value, UPN_INVALID, max_total=113, max_local=64)


def _mail_kinds(value: pl.Expr) -> Kinds:
    return {"length": value.str.len_chars() > 256}


def _mail_fix(value: pl.Expr) -> pl.Expr:
    budget = (255 - _domain(value).str.len_chars()).clip(0)
    return (
        pl.when(value.str.contains("@", literal=True))
        .then(pl.concat_str([_local(value).str.head(budget), pl.lit("@"), _domain(value)]))
        .otherwise(_truncate(value, 256))
    )


def _nickname_kinds(value: pl.Expr) -> Kinds:
    return {"length": value.str.len_chars() > 64, "character": value.str.starts_with(".")}


def _nickname_fix(value: pl.Expr) -> pl.Expr:
    cn = _truncate(pl.col("_cn").str.strip_chars_start("."), 64)
    return _fallback_cn(_truncate(value.str.strip_chars_start("."), 64), cn)


def _sam_kinds(value: pl.Expr) -> Kinds:
    return {"length": value.str.len_chars() > 20, "character": value.str.contains(_SAM_INVALID)}


def _sam_fix(value: pl.Expr) -> pl.Expr:
    cn = _truncate(pl.col("_cn").str.replace_all(_SAM_INVALID, ""), 20)
    return _fallback_cn(_truncate(value.str.replace_all(_SAM_INVALID, ""), 20), cn)


def _display_kinds(value: pl.Expr) -> Kinds:
    return {
        "blank": value.is_null() | (value.str.strip_chars() == ""),
        "length": value.str.len_chars() > 256,
    }


def _display_fix(value: pl.Expr) -> pl.Expr:
    full_name = pl.concat_str(
        [pl.col("given_name").fill_null(""), pl.col("surname").fill_null("")], separator=" "
    ).str.strip_chars()
    named = pl.when(full_name != "").then(full_name).otherwise(pl.col("_cn"))
    blank = value.is_null() | (value.str.strip_chars() == "")
    return _truncate(pl.when(blank).then(named).otherwise(value), 256)


def _given_kinds(value: pl.Expr) -> Kinds:
    return {"length": value.str.len_chars() > 64}


def _given_fix(value: pl.Expr) -> pl.Expr:
    return _truncate(value, 64)


def _proxy_parts(value: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(prefix or null, the text after it, is smtp, is the primary SMTP, is X400/X500)."""
    prefix = value.str.extract(r"^([^:]*):")
    rest = pl.when(prefix.is_not_null()).then(value.str.replace(r"^[^:]*:", "")).otherwise(value)
    is_smtp = (prefix.str.to_lowercase() == "smtp").fill_null(False)
    is_primary = (prefix == "SMTP").fill_null(False)
    is_x = prefix.str.contains(r"(?i)^x\.?[45]00$").fill_null(False)
    return prefix, rest, is_smtp, is_primary, is_x


def _prefixed_kinds(
    value: pl.Expr, smtp_invalid: str, x_invalid: str, other_invalid: str, *, tld_primary_only: bool
) -> Kinds:
    """Checks of a `prefix:address` value: a second colon, the invalid characters of its kind
    (smtp, X400/X500, other), and for smtp the RFC 2822 shape; the TLD of every smtp value, or
    only of the primary `SMTP:` one (Entra drops secondary ones in unverified domains)."""
    _, rest, is_smtp, is_primary, is_x = _proxy_parts(value)
    address = rest.str.replace_all(smtp_invalid, "").str.replace_all(":", "", literal=True)
    shape = _address_shape(address, check_tld=is_primary if tld_primary_only else True)
    is_other = ~is_smtp & ~is_x  # SIP:, EUM:, no prefix
    return {
        "length": value.str.len_chars() > 256,
        "character": rest.str.contains(":", literal=True)
        | (is_smtp & rest.str.contains(smtp_invalid))
        | (is_x & rest.str.contains(x_invalid))
        | (is_other & rest.str.contains(other_invalid)),
        **{kind: is_smtp & failed for kind, failed in shape.items()},
    }


def _proxy_kinds(value: pl.Expr) -> Kinds:
    return _prefixed_kinds(
        value, _SMTP_INVALID, _X400_X500_INVALID, _OTHER_PROXY_INVALID, tld_primary_only=True
    )


def _proxy_suspect(value: pl.Expr) -> pl.Expr:
    clean_smtp = value.str.contains(_CLEAN_SMTP_RE) & (
        ~value.str.starts_with("SMTP:") | _tld_delegated(value).fill_null(False)
    )
    clean = (
        pl.when(value.str.contains(_SMTP_PREFIX_RE))
        .then(clean_smtp)
        .when(value.str.contains(_X_PREFIX_RE))
        .then(value.str.contains(_CLEAN_X_PROXY_RE))
        .otherwise(value.str.contains(_CLEAN_OTHER_PROXY_RE))
    ) & (value.str.len_bytes() <= 256)
    return ~clean


def _prefixed_fix(
    value: pl.Expr, smtp_invalid: str, x_invalid: str, other_invalid: str, max_total: int
) -> pl.Expr:
    """Fix of a `prefix:address` value: no second colon, invalid characters of its kind out."""
    prefix, rest, is_smtp, _, is_x = _proxy_parts(value)
    no_colon = rest.str.replace_all(":", "", literal=True)
    smtp = _address_fix(
        no_colon, smtp_invalid, max_total=max_total - 1 - prefix.str.len_chars(), max_local=256
    )
    fixed_rest = (
        pl.when(is_smtp)
        .then(smtp)
        .when(is_x)
        .then(no_colon.str.replace_all(x_invalid, ""))
        .otherwise(no_colon.str.replace_all(other_invalid, ""))
    )
    return (
        pl.when(prefix.is_not_null())
        .then(pl.concat_str([prefix, pl.lit(":"), fixed_rest]))
        .otherwise(value.str.replace_all(other_invalid, ""))
    )


def _proxy_fix(value: pl.Expr) -> pl.Expr:
    return _prefixed_fix(value, _SMTP_INVALID, _X400_X500_INVALID, _OTHER_PROXY_INVALID, 256)


def _target_kinds(value: pl.Expr) -> Kinds:
    """targetAddress (Microsoft's prep doc: max 256, no space, invalid \\ < > ( ) ; , [ ] \",
    an SMTP address that routes): like a proxy value, the TLD checked for every SMTP one."""
    return _prefixed_kinds(
        value,
        _TARGET_SMTP_INVALID,
        _TARGET_OTHER_INVALID,
        _TARGET_OTHER_INVALID,
        tld_primary_only=False,
    )


def _target_fix(value: pl.Expr) -> pl.Expr:
    return _prefixed_fix(
        value, _TARGET_SMTP_INVALID, _TARGET_OTHER_INVALID, _TARGET_OTHER_INVALID, 256
    )


SPECS: dict[str, _Spec] = {
    s.attribute: s
    for s in (
        _Spec(
            "userPrincipalName",
            "upn",
            "113 characters, 64 before the @ and 48 after",
            _upn_kinds,
            _upn_fix,
            suspect=_upn_suspect,
        ),
        _Spec("mail", "mail", "256 characters", _mail_kinds, _mail_fix),
        _Spec("mailNickname", "mail_nickname", "64 characters", _nickname_kinds, _nickname_fix),
        _Spec(
            "proxyAddresses",
            "proxy_addresses",
            "256 characters",
            _proxy_kinds,
            _proxy_fix,
            suspect=_proxy_suspect,
        ),
        _Spec("sAMAccountName", "sam_account_name", "20 characters", _sam_kinds, _sam_fix),
        _Spec(
            "displayName",
            "display_name",
            "256 characters",
            _display_kinds,
            _display_fix,
            check_null=True,
        ),
        _Spec("givenName", "given_name", "64 characters", _given_kinds, _given_fix),
        _Spec("targetAddress", "target_address", "256 characters", _target_kinds, _target_fix),
    )
}


# --- the generic engine --------------------------------------------------------------------

ID_COLUMNS = ("source", "dn", "object_guid", "upn", "anchor")
CONTEXT_COLUMNS = (*ID_COLUMNS, "given_name", "surname")


def _cn() -> pl.Expr:
    """The cn of the DN, LDAP escapes undone."""
    return (
        pl.col("dn")
        .str.extract(r"(?i)^cn=((?:\\.|[^,\\])*)")
        .str.replace_all(r"\\(.)", "${1}")
        .alias("_cn")
    )


def failures(spec: _Spec, values: pl.DataFrame, *, blank_known: bool = True) -> pl.DataFrame:
    """values: context columns + ``value`` -> one row per failed kind, with ``kind``,
    ``proposed`` (or null) and the context columns."""
    kinds = spec.kinds(pl.col("value"))
    if "blank" in kinds and not blank_known:
        kinds.pop("blank")
    if not spec.check_null:
        values = values.filter(pl.col("value").is_not_null())
    if spec.suspect is not None:
        values = values.filter(spec.suspect(pl.col("value")).fill_null(True))
    flagged = values.with_columns(
        **{f"_k_{kind}": failed.fill_null(False) for kind, failed in kinds.items()}
    ).filter(pl.any_horizontal([f"_k_{kind}" for kind in kinds]))
    if not flagged.height:
        return values.clear().with_columns(
            kind=pl.lit(None, pl.String), proposed=pl.lit(None, pl.String)
        )
    if "_cn" not in flagged.columns:
        flagged = flagged.with_columns(_cn())
    fixed = pl.col("_fixed")
    still_failing = [
        failed.fill_null(True)
        for kind, failed in spec.kinds(fixed).items()
        if kind != "topleveldomain" and (kind != "blank" or blank_known)
    ]
    proposal_ok = (
        fixed.is_not_null()
        & ~pl.any_horizontal(still_failing)
        & (fixed != pl.col("value")).fill_null(True)
    )
    flagged = flagged.with_columns(_fixed=spec.fix(pl.col("value"))).with_columns(
        _proposed=pl.when(proposal_ok).then(fixed)
    )
    index = [c for c in flagged.columns if not c.startswith("_k_")]
    long = flagged.unpivot(
        on=[f"_k_{kind}" for kind in kinds], index=index, variable_name="kind", value_name="_hit"
    ).filter(pl.col("_hit"))
    return long.with_columns(
        kind=pl.col("kind").str.strip_prefix("_k_"),
        proposed=pl.when(pl.col("kind") != "_k_topleveldomain").then(pl.col("_proposed")),
    ).drop("_hit", "_fixed", "_proposed")


def _values_frame(values: list[str | None]) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame(
        {
            "value": values,
            "dn": [f"CN=check{i},DC=example,DC=com" for i in range(n)],
            "given_name": [None] * n,
            "surname": [None] * n,
        },
        schema={
            "value": pl.String,
            "dn": pl.String,
            "given_name": pl.String,
            "surname": pl.String,
        },
    )


def check_values(attribute: str, values: list[str | None]) -> pl.DataFrame:
    """(value, kind, proposed) for bare values of one attribute; for tests."""
    frame = _values_frame(values)
    found = failures(SPECS[attribute], frame)
    return found.select("value", "kind", "proposed")


def fix_values(attribute: str, values: list[str | None]) -> list[str | None]:
    """The cumulative fix of each value (whether or not it fails a rule); for tests."""
    frame = _values_frame(values).with_columns(_cn())
    return frame.select(SPECS[attribute].fix(pl.col("value"))).to_series().to_list()
