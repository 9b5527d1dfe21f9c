"""IdFix's multi-tenant rules ported line by line to Python: the oracle of the differential test.

Ported from github.com/microsoft/idfix, v2.6.0.3 (commit 7ca0a3b6ec5dd5e4fefcdc71c2b028b5a852d39d,
2024-12-03): src/Rules/MultiTenantRuleCollection.cs (the rule chains), src/IdFix/Rules/
ComposedRule.cs (every rule of a chain runs; a failing rule hands its fixed value to the next),
Shared/StringMaxLengthRule.cs, RegexRule.cs, BlankStringRule.cs, FixProxyTargetAddressRule.cs,
RFC2822Rule.cs, MultiTentant/ProxyAddressComposedRule.cs, TargetAddressComposedRule.cs,
SamAccountNameMaxLengthRule.cs and Settings/Constants.cs (the regular expressions, verbatim).

Left out on purpose: the duplicate rules (IdFix compares each attribute on its own; syncaudit's
duplicate-ad-attribute is a different rule, tested on its own) and the skip logic (syncaudit
decides scope at import). IdFix's TLD list (domains.txt, shipped beside the exe) could not be read
here: it is modelled as IANA's delegated TLDs, which its changelog's additions (.cloud, .gmbh,
.swiss, .africa) track; the edges that depend on it use TLDs on both lists or on neither.
"""

from __future__ import annotations

import re

from audit import tlds

_FLAGS = re.IGNORECASE  # RegexOptions.IgnoreCase | CultureInvariant

SMTP = re.compile("smtp:", _FLAGS)  # unanchored, as in Constants.SMTPRegex
DOMAIN_PART = re.compile(r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,17})$", _FLAGS)
LOCAL_PART = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@", _FLAGS
)
RFC2822 = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,17})$",
    _FLAGS,
)
INVALID_UPN = re.compile(r"""[\s\\%&*+/=?'{}|<>\(\)\;\:\,\[\]"äëïöüÿÄËÏÖÜŸ]""", _FLAGS)
INVALID_PROXY_SMTP = re.compile(r"""[\s<>\(\)\;\,\[\]"]""", _FLAGS)
INVALID_PROXY = re.compile(r"""[\s<>\(\)\,\[\]"]""", _FLAGS)
INVALID_TARGET_SMTP = re.compile(r"""[\s\\<>\(\)\;\,\[\]"]""", _FLAGS)
INVALID_TARGET = re.compile(r"""[\s\\<>\(\)\,\[\]"]""", _FLAGS)
INVALID_X400_X500 = re.compile(r"""[\f\n\r\t\v\[\]"']""", _FLAGS)
INVALID_SAM = re.compile(r"""[\\"|,/\[\]:<>+=;?*]""", _FLAGS)
LEADING_PERIODS = re.compile(r"^[.]+", _FLAGS)
X400 = re.compile(r"^x\.?400", _FLAGS)
X500 = re.compile(r"^x\.?500", _FLAGS)

IDFIX_TLDS = frozenset(f".{tld}" for tld in tlds.delegated_tlds())


class _Chain:
    """One ComposedRule run: every rule sees the value the previous failing rule fixed."""

    def __init__(self, value: str, cn: str) -> None:
        self.value = value
        self.cn = cn
        self.errors: set[str] = set()

    def max_length(self, limit: int) -> None:  # StringMaxLengthRule
        if len(self.value) > limit:
            self.errors.add("length")
            self.value = self.value[:limit]

    def regex(self, pattern: re.Pattern[str]) -> None:  # RegexRule
        if pattern.search(self.value):
            self.errors.add("character")
            self.value = pattern.sub("", self.value) or self.cn

    def colon(self) -> None:  # FixProxyTargetAddressRule
        colon = self.value.find(":")
        if colon > 0 and ":" in self.value[colon + 1 :]:
            self.errors.add("character")
            self.value = self.value[:colon] + ":" + self.value[colon + 1 :].replace(":", "")

    def rfc2822(self) -> None:  # RFC2822Rule
        value = self.value
        check = value[value.find(":") + 1 :] if SMTP.search(value) else value
        errors: set[str] = set()
        dot = check.rfind(".")
        if dot != -1:
            tld = check.lower()[dot:]
            if len(tld) > 1 and tld not in IDFIX_TLDS:
                errors.add("topleveldomain")
        if not DOMAIN_PART.search(check):
            errors.add("domainpart")
            at = check.rfind("@")
            if at != -1:
                check = check[: at + 1] + re.sub(r"[^a-z0-9.-]", "", check[at + 1 :], flags=_FLAGS)
        if not LOCAL_PART.search(check) or check.count("@") > 1:
            errors.add("localpart")
            at = check.rfind("@")
            if at != -1:
                local = re.sub(r"[^a-z0-9.!#$%&'*+/=?^_`{|}~-]", "", check[:at], flags=_FLAGS)
                check = (local + check[at:]).replace(".@", "@")
        if not RFC2822.search(check):
            errors.add("format")
        if errors:
            self.errors |= errors
            self.value = (
                (value[: value.find(":") + 1].strip() + check) if SMTP.search(value) else check
            )


def idfix_errors(attribute: str, value: str | None, cn: str = "cn") -> frozenset[str]:
    """The error kinds IdFix reports for one value of one attribute of a user (no duplicates)."""
    if value is None:
        # ComposedRule: an absent attribute runs only a BlankStringRule (displayName's)
        return frozenset({"blank"}) if attribute == "displayName" else frozenset()
    chain = _Chain(value, cn)
    if attribute == "displayName":
        chain.max_length(255)
        if not chain.value:
            chain.errors.add("blank")
    elif attribute == "givenName":
        chain.max_length(63)
    elif attribute == "mail":
        chain.max_length(256)
    elif attribute == "mailNickname":
        chain.max_length(64)
        chain.regex(LEADING_PERIODS)
    elif attribute == "proxyAddresses":
        chain.max_length(256)
        chain.colon()
        if SMTP.search(value):
            chain.regex(INVALID_PROXY_SMTP)
            chain.rfc2822()
        elif X400.search(value) or X500.search(value):
            chain.regex(INVALID_X400_X500)
        else:
            chain.regex(INVALID_PROXY)
    elif attribute == "sAMAccountName":
        chain.max_length(20)  # SamAccountNameMaxLengthRule, objectType user
        chain.regex(INVALID_SAM)
    elif attribute == "targetAddress":
        chain.max_length(255)
        chain.colon()
        if SMTP.search(value):
            chain.regex(INVALID_TARGET_SMTP)
            chain.rfc2822()
        else:
            chain.regex(INVALID_TARGET)
    elif attribute == "userPrincipalName":
        chain.max_length(113)
        chain.regex(INVALID_UPN)
        chain.rfc2822()
    else:
        raise ValueError(f"IdFix's multi-tenant rules do not check {attribute}")
    return frozenset(chain.errors)
