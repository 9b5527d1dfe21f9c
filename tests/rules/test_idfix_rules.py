"""IdFix multi-tenant rules (invalid-attribute): one test per outcome, false-positive guards,
and property tests for the proposed values."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from audit.classify import classify
from audit.rules import idfix, idfix_values
from tests.factories import ad_user, cloud_only_user, settings, snapshot

CODE = "invalid-attribute"


def person(name: str, **overrides: object) -> dict[str, object]:
    """ad_user with mail and proxy addresses that stay valid whatever UPN a test sets."""
    address = f"{name}@contoso.com"
    base: dict[str, object] = {
        "mail": address,
        "proxy_addresses": [f"SMTP:{address}"],
        "primary_smtp": address,
    }
    base.update(overrides)
    return ad_user(name, **base)


def dn(name: str) -> str:
    return f"CN={name},OU=Staff,DC=corp,DC=contoso,DC=com"


def found(*users: dict[str, object]) -> set[tuple[object, ...]]:
    frame = classify(snapshot(list(users)), settings(), rules=idfix.RULES)
    return set(
        frame.select(
            "code", "ad_dn", "attribute", "value", "proposed_value", "severity"
        ).iter_rows()
    )


def finding(name: str, attribute: str, value: object, proposed: object) -> tuple[object, ...]:
    return (CODE, dn(name), attribute, value, proposed, "medium")


def kinds(*users: dict[str, object]) -> dict[tuple[str, object], set[str]]:
    frame = classify(snapshot(list(users)), settings(), rules=idfix.RULES)
    out: dict[tuple[str, object], set[str]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault((row["attribute"], row["value"]), set()).add(
            json.loads(row["evidence"])["kind"]
        )
    return out


# --- userPrincipalName ---------------------------------------------------------------------


def test_upn_with_space_is_one_character_error_with_stripped_proposal() -> None:
    """A space in a UPN is a character error (not also localpart/format); the fix strips it."""
    user = person("ann", upn="ann smith@contoso.com")
    assert found(user) == {
        finding("ann", "userPrincipalName", "ann smith@contoso.com", "annsmith@contoso.com")
    }
    assert kinds(user) == {("userPrincipalName", "ann smith@contoso.com"): {"character"}}


def test_upn_diacritics_are_character_errors_transliterated_in_the_proposal() -> None:
    """Diacritics in a UPN are character errors; the proposal transliterates them (ö -> o)."""
    user = person("bjorn", upn="björn.müller@contoso.com")
    assert found(user) == {
        finding(
            "bjorn", "userPrincipalName", "björn.müller@contoso.com", "bjorn.muller@contoso.com"
        )
    }


def test_apostrophe_is_valid_in_upn_and_smtp_addresses() -> None:
    """O'Brien's UPN is valid: Microsoft lists ' among the UPN's allowed characters
    (prepare-for-directory-synchronization.md, concept-sspr-policy.md); IdFix flags it."""
    user = person(
        "obrien",
        upn="o'brien@contoso.com",
        mail="o'brien@contoso.com",
        proxy_addresses=["SMTP:o'brien@contoso.com"],
        primary_smtp="o'brien@contoso.com",
    )
    assert found(user) == set()


def test_internal_suffixes_fail_and_newer_real_tlds_pass() -> None:
    """The TLD is judged against IANA's delegated list: .lab, .loc, .lcl, .priv, .pvt,
    .domain, .localnet are not delegated (a deny-list missed them); .app and .online are."""
    internal = ["lab", "loc", "lcl", "priv", "pvt", "domain", "localnet", "local", "corp"]
    users = [person(f"u{tld}", upn=f"u{tld}@corp.{tld}") for tld in internal]
    users += [person("uapp", upn="uapp@contoso.app"), person("uonl", upn="uonl@contoso.online")]
    assert found(*users) == {
        finding(f"u{tld}", "userPrincipalName", f"u{tld}@corp.{tld}", None) for tld in internal
    }


def test_local_upn_suffix_is_a_topleveldomain_error_without_proposal() -> None:
    """bob@corp.local is a topleveldomain error; no string edit fixes it, so manual."""
    user = person("bob", upn="bob@corp.local")
    frame = classify(snapshot([user]), settings(), rules=idfix.RULES)
    assert found(user) == {finding("bob", "userPrincipalName", "bob@corp.local", None)}
    assert frame.item(0, "remediation") == "manual"
    assert json.loads(frame.item(0, "evidence"))["kind"] == "topleveldomain"


def test_upn_local_part_over_64_is_a_length_error_truncated_before_the_at() -> None:
    """More than 64 characters before the @ is a length error; the fix truncates the local part."""
    local = "a" * 70
    user = person("long", upn=f"{local}@contoso.com")
    assert found(user) == {
        finding("long", "userPrincipalName", f"{local}@contoso.com", "a" * 64 + "@contoso.com")
    }


def test_upn_shape_errors_localpart_domainpart_and_format() -> None:
    """Doubled dots are a localpart error, an underscore in the domain a domainpart error,
    a missing @ a format error (no proposal: nothing to fix it with)."""
    users = [
        person("dots", upn="d..ots.@contoso.com"),
        person("under", upn="under@con_toso.com"),
        person("noat", upn="noat"),
    ]
    assert found(*users) == {
        finding("dots", "userPrincipalName", "d..ots.@contoso.com", "d.ots@contoso.com"),
        finding("under", "userPrincipalName", "under@con_toso.com", "under@contoso.com"),
        finding("noat", "userPrincipalName", "noat", None),
    }
    assert kinds(*users) == {
        ("userPrincipalName", "d..ots.@contoso.com"): {"localpart"},
        ("userPrincipalName", "under@con_toso.com"): {"domainpart"},
        ("userPrincipalName", "noat"): {"format"},
    }


def test_blank_upn_is_not_flagged_but_then_sam_account_name_is_checked() -> None:
    """A blank UPN is fine (Entra Connect uses sAMAccountName@domain), which makes an invalid
    sAMAccountName matter; with a valid UPN the same sAMAccountName is not flagged."""
    blank = person("blank", upn=None, mail="blank@contoso.com", sam_account_name="bl*nk")
    valid = person("valid", sam_account_name="va*lid")
    assert found(blank, valid) == {finding("blank", "sAMAccountName", "bl*nk", "blnk")}


def test_invalid_sam_account_name_reported_when_upn_invalid() -> None:
    """With an invalid UPN, an over-long sAMAccountName with invalid characters is reported."""
    user = person("sam", upn="sam@corp.local", sam_account_name="a/very+long=samaccountname")
    assert found(user) == {
        finding("sam", "userPrincipalName", "sam@corp.local", None),
        finding("sam", "sAMAccountName", "a/very+long=samaccountname", "averylongsamaccountn"),
    }
    assert kinds(user)[("sAMAccountName", "a/very+long=samaccountname")] == {
        "character",
        "length",
    }


# --- other attributes ----------------------------------------------------------------------


def test_mail_over_256_is_a_length_error() -> None:
    """mail longer than 256 characters is a length error; the fix shortens the local part."""
    mail = "m" * 260 + "@contoso.com"
    user = person("mail", mail=mail)
    assert found(user) == {finding("mail", "mail", mail, "m" * 244 + "@contoso.com")}


def test_mail_nickname_starting_with_a_period_is_a_character_error() -> None:
    """A mailNickname may not start with '.'; the fix drops the leading periods."""
    user = person("nick", mail_nickname=".nick")
    assert found(user) == {finding("nick", "mailNickname", ".nick", "nick")}


def test_proxy_smtp_invalid_character_and_extra_colon() -> None:
    """A space in an smtp: proxy and a second colon in any proxy are character errors; the fix
    keeps the prefix (and its case)."""
    user = person(
        "px",
        proxy_addresses=["SMTP:px@contoso.com", "smtp:p x@contoso.com", "sip:px:1@contoso.com"],
    )
    assert found(user) == {
        finding("px", "proxyAddresses", "smtp:p x@contoso.com", "smtp:px@contoso.com"),
        finding("px", "proxyAddresses", "sip:px:1@contoso.com", "sip:px1@contoso.com"),
    }


def test_primary_smtp_in_local_domain_is_flagged_but_secondary_is_not() -> None:
    """SMTP:x@corp.local is a topleveldomain error; smtp:x@corp.local (Exchange's internal
    address, dropped by Exchange Online) is not."""
    user = person(
        "tld",
        proxy_addresses=["SMTP:tld@corp.local", "smtp:tld@corp.local", "smtp:tld@contoso.com"],
    )
    assert found(user) == {finding("tld", "proxyAddresses", "SMTP:tld@corp.local", None)}


def test_x500_proxy_with_spaces_and_parentheses_is_valid_but_quote_is_not() -> None:
    """X500 DNs legitimately contain spaces and parentheses; a double quote is invalid."""
    good = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"
    user = person("x5", proxy_addresses=["SMTP:x5@contoso.com", good, 'x500:/o=Org/cn="x"'])
    assert found(user) == {
        finding("x5", "proxyAddresses", 'x500:/o=Org/cn="x"', "x500:/o=Org/cn=x"),
    }


def test_blank_display_name_is_flagged_blank_given_name_is_not() -> None:
    """A blank displayName is an error (proposed from given name and surname); a blank
    givenName is fine."""
    user = person("dina", display_name="  ", given_name="Dina", surname="Tester")
    nogiven = person("noname", given_name=None)
    assert found(user, nogiven) == {finding("dina", "displayName", "  ", "Dina Tester")}


def test_missing_display_name_column_is_not_a_blank_error() -> None:
    """When no user has a displayName at all (not exported), blank is not reported."""
    users = [person("a1", display_name=None), person("a2", display_name=None)]
    assert found(*users) == set()
    with_one = [person("a1", display_name=None, given_name=None, surname=None), person("a2")]
    assert found(*with_one) == {finding("a1", "displayName", None, "a1")}


def test_display_and_given_name_length() -> None:
    """displayName over 256 and givenName over 64 are length errors, truncated."""
    user = person("lenny", display_name="D" * 300, given_name="G" * 70)
    assert found(user) == {
        finding("lenny", "displayName", "D" * 300, "D" * 256),
        finding("lenny", "givenName", "G" * 70, "G" * 64),
    }


def test_every_in_scope_user_is_checked_whatever_its_name() -> None:
    """The rule has no skip list of its own: which objects sync is decided once, at import
    (sources.files). IdFix skips cn prefixes such as iwam, Guest or msol, which also catch
    people: Iwamoto's invalid UPN is reported. Out-of-scope users are not checked."""
    users = [
        person("iwamoto", upn="iwamoto ken@contoso.com"),
        person("guestrin", upn="guestrin@corp.local"),
        person("oos", upn="oos@corp.local", in_scope=False, out_of_scope_reason="excluded OU"),
    ]
    assert found(*users) == {
        finding(
            "iwamoto", "userPrincipalName", "iwamoto ken@contoso.com", "iwamotoken@contoso.com"
        ),
        finding("guestrin", "userPrincipalName", "guestrin@corp.local", None),
    }


def test_other_proxy_prefixes_are_checked_for_spaces_and_brackets() -> None:
    """SIP:, EUM: and prefix-less values: whitespace and < > ( ) , [ ] " are invalid, the ;
    and = of an EUM address are not."""
    good_eum = "EUM:4711;phone-context=dialplan.contoso.com"
    user = person(
        "sip",
        proxy_addresses=[
            "SMTP:sip@contoso.com",
            good_eum,
            "SIP:sip user@contoso.com",
            "sip:<sip@contoso.com>",
            "sip@contoso.com (old)",
        ],
    )
    assert found(user) == {
        finding("sip", "proxyAddresses", "SIP:sip user@contoso.com", "SIP:sipuser@contoso.com"),
        finding("sip", "proxyAddresses", "sip:<sip@contoso.com>", "sip:sip@contoso.com"),
        finding("sip", "proxyAddresses", "sip@contoso.com (old)", "sip@contoso.comold"),
    }


def test_target_address_is_checked_like_an_smtp_address() -> None:
    """targetAddress: characters as smtp plus the backslash, the RFC 2822 shape with the TLD,
    a second colon, and 256 characters."""
    users = [
        person("t1", target_address="SMTP:t1@contoso.mail.onmicrosoft.com"),
        person("t2", target_address="SMTP:t 2@contoso.mail.onmicrosoft.com"),
        person("t3", target_address="SMTP:t3@exchange.corp.local"),
        person("t4", target_address="smtp:t4:x@contoso.com"),
        person("t5", target_address="SMTP:" + "t" * 260 + "@contoso.com"),
    ]
    assert found(*users) == {
        finding(
            "t2",
            "targetAddress",
            "SMTP:t 2@contoso.mail.onmicrosoft.com",
            "SMTP:t2@contoso.mail.onmicrosoft.com",
        ),
        finding("t3", "targetAddress", "SMTP:t3@exchange.corp.local", None),
        finding("t4", "targetAddress", "smtp:t4:x@contoso.com", "smtp:t4x@contoso.com"),
        finding(
            "t5",
            "targetAddress",
            "SMTP:" + "t" * 260 + "@contoso.com",
            "SMTP:" + "t" * 239 + "@contoso.com",
        ),
    }


def test_a_fix_never_takes_an_address_another_object_has() -> None:
    """SMTP:cfö@ would be fixed to SMTP:cfo@contoso.com, the CFO's address: the next sync could
    soft-match it onto the CFO's account. The finding stays, as a manual step naming the CFO;
    a fix that collides only with the user's own values is still proposed."""
    cfo = person("cfo")
    clerk = person(
        "clerk",
        proxy_addresses=[
            "SMTP:clerk@contoso.com",
            "smtp:cfö@contoso.com",
            "smtp:cl erk@contoso.com",
        ],
    )
    frame = classify(snapshot([cfo, clerk]), settings(), rules=idfix.RULES)
    rows = {r["value"]: r for r in frame.iter_rows(named=True)}
    taken = rows["smtp:cfö@contoso.com"]
    assert (taken["proposed_value"], taken["remediation"]) == (None, "manual")
    assert taken["detail"].endswith(
        "the fix 'smtp:cfo@contoso.com' is not proposed: AD user "
        "CN=cfo,OU=Staff,DC=corp,DC=contoso,DC=com already has it, so the value needs a human "
        "choice."
    )
    assert json.loads(taken["evidence"])["rejected_proposal"] == "smtp:cfo@contoso.com"
    own = rows["smtp:cl erk@contoso.com"]  # becomes clerk@contoso.com: its own primary address
    assert own["proposed_value"] == "smtp:clerk@contoso.com"


def test_a_fix_taking_a_cloud_address_or_a_nickname_is_withdrawn() -> None:
    """Cloud users and groups own addresses too; a mailNickname fix must not take another
    user's nickname."""
    user = person("zoe", upn="zoë@contoso.com", mail_nickname=".team")
    other = person("other", mail_nickname="team")
    cloud = cloud_only_user("zoe-cloud", upn="zoe@contoso.com")
    frame = classify(snapshot([user, other], [cloud]), settings(), rules=idfix.RULES)
    rows = {r["attribute"]: r for r in frame.iter_rows(named=True)}
    assert rows["userPrincipalName"]["proposed_value"] is None
    assert "cloud user zoe@contoso.com (id " in rows["userPrincipalName"]["detail"]
    assert rows["mailNickname"]["proposed_value"] is None
    assert "AD user CN=other,OU=Staff" in rows["mailNickname"]["detail"]


def test_findings_carry_kind_evidence_and_set_attribute_remediation() -> None:
    """A fixable finding names the kind in its evidence and the ad-set-attribute action."""
    frame = classify(snapshot([person("ev", upn="e v@contoso.com")]), settings(), rules=idfix.RULES)
    row = frame.row(0, named=True)
    assert row["remediation"] == "ad-set-attribute"
    assert json.loads(row["evidence"])["kind"] == "character"
    assert row["ad_upn"] == "e v@contoso.com" and row["cloud_state"] == "none"


# --- properties of the proposed values -----------------------------------------------------

_CHARS = list("abcXYZ019.@-_ '\"()<>;:,[]\\%&*+/=?{}|!#$^`~äéøß\t")
_TEXT = st.text(alphabet=st.sampled_from(_CHARS), max_size=40)
_ADDRESS = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    st.text(alphabet=st.sampled_from(_CHARS), min_size=0, max_size=80),
    st.text(alphabet=st.sampled_from(list("abc-_.é0")), min_size=0, max_size=60),
    st.sampled_from(["com", "local", "c", "museum", "x1"]),
)
_PREFIXED = st.builds(
    lambda prefix, rest: f"{prefix}:{rest}",
    st.sampled_from(["SMTP", "smtp", "X500", "x400", "sip", "EUM"]),
    st.one_of(_ADDRESS, _TEXT),
)
_VALUES: dict[str, st.SearchStrategy[str]] = {
    "userPrincipalName": st.one_of(_ADDRESS, _TEXT),
    "mail": st.one_of(_ADDRESS, st.text(max_size=300)),
    "mailNickname": st.text(alphabet=st.sampled_from(list(".ab c")), max_size=80),
    "proxyAddresses": _PREFIXED,
    "sAMAccountName": st.text(alphabet=st.sampled_from(list('ab*/"|:.')), max_size=30),
    "displayName": st.one_of(st.just(" "), st.text(max_size=300)),
    "givenName": st.text(max_size=100),
    "targetAddress": _PREFIXED,
}


@hsettings(max_examples=60, deadline=None)
@given(data=st.data())
def test_proposed_values_pass_the_rule_they_fix_and_fixing_is_idempotent(
    data: st.DataObject,
) -> None:
    """Every proposal passes every rule of its attribute (except the unfixable top-level
    domain), and fixing a fixed value changes nothing."""
    for attribute, strategy in _VALUES.items():
        values = data.draw(st.lists(strategy, min_size=1, max_size=12), label=attribute)
        result = idfix_values.check_values(attribute, list(values))
        proposals = result.filter(pl.col("proposed").is_not_null())
        for proposal in set(proposals.get_column("proposed")):
            again = idfix_values.check_values(attribute, [proposal])
            assert set(again.get_column("kind")) <= {"topleveldomain"}, (attribute, proposal)
        fixed = idfix_values.fix_values(attribute, list(values))
        assert idfix_values.fix_values(attribute, fixed) == fixed, attribute
