"""Differential test: IdFix's own multi-tenant rules (ported in idfix_oracle, line by line from
its C#) and syncaudit's invalid-attribute, on every rule edge syncaudit implements.

Each edge is (attribute, value, reason). reason None: both must report the same error kinds.
Otherwise they differ on purpose, and REASONS says why, with the source that decides: where
Microsoft's documentation and IdFix disagree, syncaudit follows the documentation; where the two
report the same problem under other names, the edge says so.
"""

from __future__ import annotations

import pytest

from audit.rules import idfix_values
from tests.rules.idfix_oracle import idfix_errors

PREP = "microsoft-365/enterprise/prepare-for-directory-synchronization.md (ms.date 09/25/2024)"
SSPR = "entra-docs identity/authentication/concept-sspr-policy.md (ms.date 05/15/2025)"

REASONS = {
    "apostrophe": (
        'The apostrophe is valid in a UPN: Microsoft lists "Characters allowed: A - Z, a - z, '
        f"0 - 9, ' . - _ ! # ^ ~\" ({PREP}; {SSPR} lists the same set). IdFix 2.6 still has ' in "
        "InvalidUpnRegExRegex, a known false positive for O'Brien."
    ),
    "diacritics": (
        '"Letters with diacritical marks, such as umlauts, accents, and tildes, are invalid '
        f'characters" ({PREP}): syncaudit reports every non-ASCII letter of a UPN as a '
        "character error. IdFix's regex names only äëïöüÿ and leaves é, ø, ß to its RFC 2822 "
        "check, which reports them as localpart/domainpart: the same values, another label."
    ),
    "upn-64-48": (
        '"Maximum number of characters for the username that is in front of the at sign (@): '
        f"64 ... for the domain name following the at sign (@): 48\" ({PREP}; {SSPR}). IdFix's "
        "comments name the split but its code checks only the 113 total."
    ),
    "microsoft-lengths": (
        f"Microsoft's limits are displayName 256, givenName 64, targetAddress 256 ({PREP}); "
        "IdFix checks 255, 63 and 255, one short."
    ),
    "blank-whitespace": (
        f'displayName "must not be blank" ({PREP}): a value of spaces is blank. IdFix\'s '
        "BlankStringRule only catches an absent value."
    ),
    "sam-apostrophe": (
        'sAMAccountName: "Invalid characters: [ \\ " | , / : < > + = ; ? * \']" '
        f"({PREP}) includes the apostrophe; IdFix's regex does not. syncaudit checks "
        "sAMAccountName only when the UPN is blank or invalid (the same page: with a valid UPN "
        "the account is created), so this never flags O'Brien's normal account."
    ),
    "secondary-smtp": (
        "A secondary smtp: address in a domain that is not verified is dropped, not refused: "
        '"For a mailbox user ... only values for verified domains appear" (ProxyCalc, entra-docs '
        "how-to-connect-syncservice-shadow-attributes.md). syncaudit checks the TLD of the UPN, "
        "the primary SMTP and an SMTP targetAddress; IdFix of every smtp value, which floods "
        "its report with the ubiquitous smtp:user@corp.local."
    ),
    "truncated-then-checked": (
        "IdFix truncates an over-long value to 255 first and then checks the cut value, whose "
        "domain is now broken (domainpart, format, topleveldomain); syncaudit judges the value "
        "as stored (length) and proposes a fix that shortens the local part and keeps the domain."
    ),
    "kind-granularity": (
        "The same values fail in both; the labels differ. syncaudit reports 'format' only for a "
        "value without an @ (not shaped local@domain) and otherwise names the part that is wrong "
        "(localpart, domainpart); IdFix also adds Format whenever its own part fix still leaves "
        "a malformed address, and LocalPart/DomainPart for a value without @."
    ),
}

EDGES: list[tuple[str, str | None, str | None]] = [
    # userPrincipalName
    ("userPrincipalName", "ann@contoso.com", None),
    ("userPrincipalName", "ann.lee@contoso.com", None),
    ("userPrincipalName", "ann_lee-x@contoso.com", None),
    ("userPrincipalName", "a!b#c^d~e@contoso.com", None),
    ("userPrincipalName", "ann@sub.contoso.com", None),
    ("userPrincipalName", "ann@contoso.co.uk", None),
    ("userPrincipalName", "o'brien@contoso.com", "apostrophe"),
    ("userPrincipalName", "d'angelo.o'neil@contoso.com", "apostrophe"),
    ("userPrincipalName", "ann lee@contoso.com", None),
    ("userPrincipalName", "ann\tlee@contoso.com", None),
    ("userPrincipalName", "ann\\lee@contoso.com", None),
    ("userPrincipalName", "ann%lee@contoso.com", None),
    ("userPrincipalName", "ann&lee@contoso.com", None),
    ("userPrincipalName", "ann*lee@contoso.com", None),
    ("userPrincipalName", "ann+lee@contoso.com", None),
    ("userPrincipalName", "ann/lee@contoso.com", None),
    ("userPrincipalName", "ann=lee@contoso.com", None),
    ("userPrincipalName", "ann?lee@contoso.com", None),
    ("userPrincipalName", "ann{lee}@contoso.com", None),
    ("userPrincipalName", "ann|lee@contoso.com", None),
    ("userPrincipalName", "<ann>@contoso.com", None),
    ("userPrincipalName", "ann(lee)@contoso.com", None),
    ("userPrincipalName", "ann;lee@contoso.com", None),
    ("userPrincipalName", "ann:lee@contoso.com", None),
    ("userPrincipalName", "ann,lee@contoso.com", None),
    ("userPrincipalName", "[ann]@contoso.com", None),
    ("userPrincipalName", 'ann"lee@contoso.com', None),
    ("userPrincipalName", "zoë@contoso.com", None),
    ("userPrincipalName", "müller@contoso.com", None),
    ("userPrincipalName", "josé@contoso.com", "diacritics"),
    ("userPrincipalName", "søren@contoso.com", "diacritics"),
    ("userPrincipalName", "straße@contoso.com", "diacritics"),
    ("userPrincipalName", "ann@cöntoso.com", None),
    ("userPrincipalName", "ann@café.com", "diacritics"),
    ("userPrincipalName", "a" * 64 + "@contoso.com", None),
    ("userPrincipalName", "a" * 64 + "a@contoso.com", "upn-64-48"),
    ("userPrincipalName", "ann@" + "d" * 40 + ".com", None),
    ("userPrincipalName", "ann@" + "d" * 45 + ".com", "upn-64-48"),
    ("userPrincipalName", "a" * 100 + "@contoso.com", "upn-64-48"),
    ("userPrincipalName", "a" * 102 + "@contoso.com", None),
    ("userPrincipalName", "noat", "kind-granularity"),
    ("userPrincipalName", "@contoso.com", "kind-granularity"),
    ("userPrincipalName", "ann@", "kind-granularity"),
    ("userPrincipalName", "ann@@contoso.com", None),
    ("userPrincipalName", "ann@lee@contoso.com", None),
    ("userPrincipalName", "ann@contoso", "kind-granularity"),
    ("userPrincipalName", "ann.@contoso.com", None),
    ("userPrincipalName", ".ann@contoso.com", "kind-granularity"),
    ("userPrincipalName", "ann..lee@contoso.com", "kind-granularity"),
    ("userPrincipalName", "ann@-contoso.com", "kind-granularity"),
    ("userPrincipalName", "ann@contoso-.com", "kind-granularity"),
    ("userPrincipalName", "ann@con_toso.com", None),
    ("userPrincipalName", "ann@contoso..com", "kind-granularity"),
    ("userPrincipalName", "ann@contoso.c", "kind-granularity"),
    ("userPrincipalName", "ann@contoso.123", "kind-granularity"),
    ("userPrincipalName", "ann@contoso.com.", "kind-granularity"),
    ("userPrincipalName", "ann@contoso.local", None),
    ("userPrincipalName", "ann@corp.lan", None),
    ("userPrincipalName", "ann@contoso.corp", None),
    ("userPrincipalName", "ann@contoso.internal", None),
    ("userPrincipalName", "ann@contoso.lab", None),
    ("userPrincipalName", "ann@contoso.loc", None),
    ("userPrincipalName", "ann@contoso.lcl", None),
    ("userPrincipalName", "ann@contoso.priv", None),
    ("userPrincipalName", "ann@contoso.pvt", None),
    ("userPrincipalName", "ann@contoso.domain", None),
    ("userPrincipalName", "ann@contoso.localnet", None),
    ("userPrincipalName", "ann@contoso.home", None),
    ("userPrincipalName", "ann@contoso.mail", None),
    ("userPrincipalName", "ann@contoso.intra", None),
    ("userPrincipalName", "ann@contoso.app", None),
    ("userPrincipalName", "ann@contoso.dev", None),
    ("userPrincipalName", "ann@contoso.cloud", None),
    ("userPrincipalName", "ann@contoso.gmbh", None),
    ("userPrincipalName", "ann@contoso.swiss", None),
    ("userPrincipalName", "ann@contoso.africa", None),
    ("userPrincipalName", "ann@contoso.online", None),
    ("userPrincipalName", "ann lee@contoso.local", None),
    ("userPrincipalName", "smtp:ann@contoso.com", None),
    ("userPrincipalName", None, None),
    # mail
    ("mail", "ann@contoso.com", None),
    ("mail", "m" * 244 + "@contoso.com", None),
    ("mail", "m" * 245 + "@contoso.com", None),
    ("mail", "ann lee@contoso.com", None),
    ("mail", "ann@contoso.local", None),
    ("mail", "not an address", None),
    ("mail", "o'brien@contoso.com", None),
    ("mail", None, None),
    # mailNickname
    ("mailNickname", "ann", None),
    ("mailNickname", ".ann", None),
    ("mailNickname", "..ann", None),
    ("mailNickname", "ann.", None),
    ("mailNickname", "a.nn", None),
    ("mailNickname", "n" * 64, None),
    ("mailNickname", "n" * 65, None),
    ("mailNickname", "ann lee", None),
    ("mailNickname", ".", None),
    # proxyAddresses
    ("proxyAddresses", "SMTP:ann@contoso.com", None),
    ("proxyAddresses", "smtp:ann@contoso.com", None),
    ("proxyAddresses", "smtp:o'brien@contoso.com", None),
    ("proxyAddresses", "smtp:ann lee@contoso.com", None),
    ("proxyAddresses", "smtp:<ann>@contoso.com", None),
    ("proxyAddresses", "smtp:ann(x)@contoso.com", None),
    ("proxyAddresses", "smtp:ann;x@contoso.com", None),
    ("proxyAddresses", "smtp:ann,x@contoso.com", None),
    ("proxyAddresses", "smtp:[ann]@contoso.com", None),
    ("proxyAddresses", 'smtp:"ann"@contoso.com', None),
    ("proxyAddresses", "smtp:ann:x@contoso.com", None),
    ("proxyAddresses", "SMTP:ann@contoso.local", None),
    ("proxyAddresses", "smtp:ann@contoso.local", "secondary-smtp"),
    ("proxyAddresses", "smtp:ann@corp.lab", "secondary-smtp"),
    ("proxyAddresses", "SMTP:ann@contoso.app", None),
    ("proxyAddresses", "smtp:ann@contoso", "kind-granularity"),
    ("proxyAddresses", "smtp:ann..x@contoso.com", "kind-granularity"),
    ("proxyAddresses", "smtp:ann@con_toso.com", None),
    ("proxyAddresses", "smtp:josé@contoso.com", None),
    ("proxyAddresses", "smtp:zoë@contoso.com", None),
    ("proxyAddresses", "SMTP:ann", "kind-granularity"),
    ("proxyAddresses", "SMTP:" + "p" * 239 + "@contoso.com", None),
    ("proxyAddresses", "SMTP:" + "p" * 240 + "@contoso.com", None),
    (
        "proxyAddresses",
        "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
        "/cn=Recipients/cn=ann",
        None,
    ),
    ("proxyAddresses", 'X500:/o=Org/cn="ann"', None),
    ("proxyAddresses", "x500:/o=Org/cn=o'brien", None),
    ("proxyAddresses", "X500:/o=Org/cn=[ann]", None),
    ("proxyAddresses", "X500:/o=Org/cn=ann\tlee", None),
    ("proxyAddresses", "X500:/o=Org/cn=ann:lee", None),
    ("proxyAddresses", "X.500:/o=Org/cn=ann", None),
    ("proxyAddresses", "X400:C=US;A= ;P=Contoso;O=Exchange;S=Lee;G=Ann;", None),
    ("proxyAddresses", "x400:C=US;A= ;P=Contoso;O=Exchange;S=O'Brien;", None),
    ("proxyAddresses", "SIP:ann@contoso.com", None),
    ("proxyAddresses", "SIP:ann lee@contoso.com", None),
    ("proxyAddresses", "sip:<ann@contoso.com>", None),
    ("proxyAddresses", "sip:ann(x)@contoso.com", None),
    ("proxyAddresses", "sip:ann,x@contoso.com", None),
    ("proxyAddresses", "sip:ann;x@contoso.com", None),
    ("proxyAddresses", "sip:o'brien@contoso.com", None),
    ("proxyAddresses", "sip:ann:1@contoso.com", None),
    ("proxyAddresses", "EUM:4711;phone-context=dialplan.contoso.com", None),
    ("proxyAddresses", "EUM:47 11;phone-context=dialplan.contoso.com", None),
    ("proxyAddresses", "ann@contoso.com", None),
    ("proxyAddresses", "ann lee@contoso.com", None),
    ("proxyAddresses", "sip:ann@contoso.local", None),
    # sAMAccountName
    ("sAMAccountName", "ann", None),
    ("sAMAccountName", "s" * 20, None),
    ("sAMAccountName", "s" * 21, None),
    ("sAMAccountName", "ann\\lee", None),
    ("sAMAccountName", 'ann"lee', None),
    ("sAMAccountName", "ann|lee", None),
    ("sAMAccountName", "ann,lee", None),
    ("sAMAccountName", "ann/lee", None),
    ("sAMAccountName", "[ann]", None),
    ("sAMAccountName", "ann:lee", None),
    ("sAMAccountName", "<ann>", None),
    ("sAMAccountName", "ann+lee", None),
    ("sAMAccountName", "ann=lee", None),
    ("sAMAccountName", "ann;lee", None),
    ("sAMAccountName", "ann?", None),
    ("sAMAccountName", "ann*", None),
    ("sAMAccountName", "o'brien", "sam-apostrophe"),
    ("sAMAccountName", "ann lee", None),
    ("sAMAccountName", "ann.lee", None),
    # displayName
    ("displayName", "Ann Lee", None),
    ("displayName", "Zoë Müller", None),
    ("displayName", "D" * 255, None),
    ("displayName", "D" * 256, "microsoft-lengths"),
    ("displayName", "D" * 257, None),
    ("displayName", " ", "blank-whitespace"),
    ("displayName", None, None),
    # givenName
    ("givenName", "Ann", None),
    ("givenName", "G" * 63, None),
    ("givenName", "G" * 64, "microsoft-lengths"),
    ("givenName", "G" * 65, None),
    ("givenName", None, None),
    # targetAddress
    ("targetAddress", "SMTP:ann@contoso.mail.onmicrosoft.com", None),
    ("targetAddress", "smtp:o'brien@contoso.mail.onmicrosoft.com", None),
    ("targetAddress", "SMTP:ann lee@contoso.mail.onmicrosoft.com", None),
    ("targetAddress", "SMTP:ann\\lee@contoso.com", None),
    ("targetAddress", "SMTP:ann;lee@contoso.com", None),
    ("targetAddress", "SMTP:ann@contoso.local", None),
    ("targetAddress", "SMTP:ann@contoso", "kind-granularity"),
    ("targetAddress", "smtp:ann:x@contoso.com", None),
    ("targetAddress", "SMTP:" + "t" * 238 + "@contoso.com", None),
    ("targetAddress", "SMTP:" + "t" * 239 + "@contoso.com", "microsoft-lengths"),
    ("targetAddress", "SMTP:" + "t" * 240 + "@contoso.com", "truncated-then-checked"),
    ("targetAddress", "X500:/o=Exchange Org/cn=ann", None),
    ("targetAddress", "X400:C=US;P=Contoso;S=Lee;", None),
    ("targetAddress", "X400:C=US;P=Contoso;S=Lee (x);", None),
]


def ours(attribute: str, value: str | None) -> frozenset[str]:
    found = idfix_values.check_values(attribute, [value])
    return frozenset(found.get_column("kind").to_list())


@pytest.mark.parametrize(
    ("attribute", "value", "reason"),
    EDGES,
    ids=[f"{a}:{str(v)[:40]}" for a, v, _ in EDGES],
)
def test_idfix_and_syncaudit_agree_or_the_difference_is_documented(
    attribute: str, value: str | None, reason: str | None
) -> None:
    theirs = idfix_errors(attribute, value)
    mine = ours(attribute, value)
    if reason is None:
        assert mine == theirs, f"IdFix {sorted(theirs)}, syncaudit {sorted(mine)}"
    else:
        assert reason in REASONS
        assert mine != theirs, f"documented as differing ({reason}) but both say {sorted(mine)}"


def test_the_edge_table_covers_every_attribute_and_both_outcomes() -> None:
    attributes = {a for a, _, _ in EDGES}
    assert attributes == set(idfix_values.SPECS)
    assert len(EDGES) >= 176
    flagged = {a for a, v, _ in EDGES if idfix_errors(a, v)}
    clean = {a for a, v, _ in EDGES if not idfix_errors(a, v)}
    assert flagged == clean == attributes
    assert {r for _, _, r in EDGES if r} == set(REASONS)


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        # InvalidUpnRegExRegex (Constants.cs 34) has the apostrophe and only äëïöüÿ
        ("userPrincipalName", "o'brien@contoso.com", {"character"}),
        ("userPrincipalName", "zoë@contoso.com", {"character"}),
        ("userPrincipalName", "josé@contoso.com", {"localpart"}),
        # RFC2822Rule: Format is judged on the value after its own local/domain fix
        ("userPrincipalName", "ann..lee@contoso.com", {"localpart", "format"}),
        # ProxyAddressComposedRule: other prefixes allow ';' (InvalidProxyAddressRegex)
        ("proxyAddresses", "EUM:4711;phone-context=dp.contoso.com", set()),
        ("proxyAddresses", "x500:/o=Org/cn=o'brien", {"character"}),
        # SamAccountNameMaxLengthRule: 20 for users
        ("sAMAccountName", "s" * 21, {"length"}),
        # BlankStringRule runs only for an absent value
        ("displayName", None, {"blank"}),
        ("displayName", " ", set()),
    ],
)
def test_the_oracle_reads_idfix_as_its_source_says(
    attribute: str, value: str | None, expected: set[str]
) -> None:
    assert idfix_errors(attribute, value) == expected
