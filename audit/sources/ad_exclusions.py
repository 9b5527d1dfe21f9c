"""Which AD objects are not people Entra sync would export (dropped, counted by reason), and
which people Entra Connect's default sync rules leave out (kept, out of scope): IdFix's skip
list made exact, and the default rules' filters (FACTS.md section 4).
"""

from __future__ import annotations

from audit.sources.detect import bool_from_text
from audit.sources.records import Record, Value, first_text, value_text
from audit.sources.scope import first_rdn_value

# IdFix's skip list (src/IdFix: built-in and Exchange system accounts), made exact: IdFix
# matches bare cn prefixes ("guest", "iwam", "msol", "admini") only to quiet its own report,
# but here a skipped object leaves the whole estate, and those prefixes also catch people
# (Iwamoto, "Guest, Amanda", Msoliman, Adminian). The built-in Administrator, Guest and
# krbtgt also carry isCriticalSystemObject.
SYSTEM_CN_NAMES = frozenset({"administrator", "guest", "krbtgt"})
SYSTEM_CN_PREFIXES = (
    "cas_{",
    "discoverysearchmailbox",
    "federatedemail.",
    "httpconnector",
    "iusr_",
    "iwam_",
    "msol_",
    "support_",
    "systemmailbox{",
    "wwioadmini",
    "healthmailbox",
)
_EXCHANGE_SYSTEM_RECIPIENTS = 0x21C07000  # msExchRecipientTypeDetails bits the rules exclude


def default_rule_exclusion(attrs: dict[str, list[Value]]) -> str | None:
    """Why Entra Connect's default sync rules leave this user out, or None."""
    sam = (first_text(attrs, "samaccountname") or "").upper()
    nickname = (first_text(attrs, "mailnickname") or "").upper()
    prefix = "Entra Connect default sync rules"
    if sam.startswith(("MSOL_", "AAD_")):
        return (
            f"{prefix}: sAMAccountName starts with {sam[: sam.index('_') + 1]} (the sync account)"
        )
    if sam == "SUPPORT_388945A0":
        return f"{prefix}: sAMAccountName is SUPPORT_388945a0"
    if nickname.startswith("SYSTEMMAILBOX{"):
        return f"{prefix}: mailNickname starts with SystemMailbox{{"
    for name, value in (("mailNickname", nickname), ("sAMAccountName", sam)):
        if value.startswith("CAS_") and "}" in value:
            return f"{prefix}: {name} is an Exchange CAS_{{...}} system mailbox"
    details = first_text(attrs, "msexchrecipienttypedetails")
    if details and details.isdigit() and int(details) & _EXCHANGE_SYSTEM_RECIPIENTS:
        return f"{prefix}: msExchRecipientTypeDetails {details} is an Exchange system recipient"
    return None


def exclusion_reason(record: Record) -> str | None:
    """Why an AD object is not a person Entra sync would export, or None."""
    attrs = record.attrs
    classes = [value_text(v).lower() for v in attrs.get("objectclass", ())]
    category = (first_text(attrs, "objectcategory") or "").lower()
    if "computer" in classes or category.startswith(("cn=computer,", "computer")):
        return "computer"
    if classes and "user" not in classes and "inetorgperson" not in classes:
        return "not-a-user"
    dn_lower = record.dn.lower()
    if "\\0acnf:" in dn_lower or "\ncnf:" in dn_lower:
        return "replication-conflict"
    if bool_from_text(first_text(attrs, "iscriticalsystemobject")):
        return "critical-system-object"
    named = first_text(attrs, "cn") or first_text(attrs, "name")
    cn = (named or first_rdn_value(record.dn)).lower()
    if cn.endswith("$"):
        return "cn-ends-with-$"
    if cn in SYSTEM_CN_NAMES or cn.startswith(SYSTEM_CN_PREFIXES):
        return "system-account"
    return None
