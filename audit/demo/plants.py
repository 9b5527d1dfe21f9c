"""The planted problems: each finding code of the design's table, in a few realistic variants.

Each plant turns clean objects into one real-world case and records (``Estate.expect``) the
findings it must produce, the planted one and the secondary ones the problem really causes.
``build_estate()`` adds them in a fixed order, so every seeded identifier stays the same.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import timedelta

from audit.demo.estate import (
    AD_DNS_DOMAIN,
    CASCADE_PEOPLE,
    DISABLED_OU,
    DOMAIN,
    DOMAIN_SID,
    EXCHANGE_ADMIN,
    FEDERATED,
    GLOBAL_ADMIN,
    HELPDESK_ADMIN,
    INITIAL,
    MAIL_ROUTING,
    MAILBOX_AUDITOR,
    OLD_FOREST_DN,
    PRIV_ROLE_ADMIN,
    SERVICE_OU,
    TAKEN,
    TENANT_LAST_SYNC,
    Estate,
    base_estate,
    default_sam,
    iso,
    provisioning_error,
    users_ou,
    wrong_anchor,
)
from audit.demo.planned import plant_planned_change


def build_estate() -> Estate:
    """The base population with every plant added (in this order: the seeded ids depend on it)."""
    estate = base_estate()
    _plant_anchor_cases(estate)
    _plant_matching_cases(estate)
    _plant_duplicate_cases(estate)
    _plant_drift_cases(estate)
    _plant_tenant_cases(estate)
    _plant_idfix_cases(estate)
    _plant_late_cases(estate)
    plant_planned_change(estate)
    return estate


def _plant_anchor_cases(estate: Estate) -> None:
    staff, sales, eng = users_ou("Staff"), users_ou("Sales"), users_ou("Engineering")

    # anchor-held-by-deleted: the cloud user was deleted (cleanup script, or the AD object left
    # scope for a while); only the recycle-bin copy holds the anchor.
    for first, last, ou, days in (("Alex", "Wilber", staff, 6), ("Diego", "Siciliani", eng, 17)):
        entry = estate.person(first, last, ou)
        estate.soft_delete(estate.twin(entry), days_ago=days)
        estate.expect("anchor-held-by-deleted", entry.dn)
    # ...the classic: a helpdesk recreated the mailbox as a cloud-only user with the same UPN
    # while the old one sits in the recycle bin holding the anchor.
    megan = estate.person("Megan", "Bowen", sales)
    estate.soft_delete(estate.twin(megan), days_ago=12)
    estate.cloud_only(megan.upn or "", "Megan Bowen", created_days=10)
    # Not also soft-match-pending: the deleted holder decides (restore or purge first), and
    # the anchor-held-by-deleted finding names the waiting cloud-only user.
    estate.expect("anchor-held-by-deleted", megan.dn)

    # anchor-held-by-other: an active cloud user holds the anchor but is someone else entirely
    # (an AD object restored from backup over a deleted colleague's record, say).
    for first, last, other_first, other_last in (
        ("Isaiah", "Langer", "Lee", "Gu"),
        ("Nestor", "Wilke", "Pradeep", "Gupta"),
    ):
        entry = estate.person(first, last, eng)
        other = f"{other_first}.{other_last}".lower()
        estate.claim(f"{other}@{DOMAIN}")
        estate.twin(
            entry,
            userPrincipalName=f"{other}@{DOMAIN}",
            mail=f"{other}@{DOMAIN}",
            mailNickname=other,
            proxyAddresses=[f"SMTP:{other}@{DOMAIN}"],
            displayName=f"{other_first} {other_last}",
            givenName=other_first,
            surname=other_last,
            onPremisesDistinguishedName=f"CN={other_first} {other_last},{eng}",
            onPremisesSamAccountName=default_sam(other_first, other_last),
            onPremisesSecurityIdentifier=f"{DOMAIN_SID}-{estate.rid()}",
            onPremisesUserPrincipalName=f"{other}@{DOMAIN}",
            onPremisesObjectIdentifier=str(estate.guid()),
        )
        estate.expect("anchor-held-by-other", entry.dn)

    # anchor-format-invalid: an admin pre-created the cloud mailbox and stamped the anchor with a
    # home-made conversion. The AD user stays unmatched and soft match would fail on the
    # candidate's immutableId (InvalidSoftMatch), but the finding names the AD user and the right
    # value, so it is reported once, not again as soft-match-blocked or cloud-orphan.
    def wrong_encodings() -> Iterable[tuple[str, str, str]]:
        yield "Johanna", "Lorenz", "guid-text"
        yield "Joni", "Sherman", "big-endian"
        yield "Lynne", "Robbins", "guid-text-base64"
        yield "Miriam", "Graham", "url-safe"

    for first, last, mistake in wrong_encodings():
        entry = estate.person(first, last, sales, created_days=3)
        if mistake == "url-safe":
            while "+" not in entry.anchor and "/" not in entry.anchor:
                entry.guid = estate.guid()
        value = wrong_anchor(entry.guid, mistake)
        estate.cloud_only(
            entry.upn or "", f"{first} {last}", created_days=30, onPremisesImmutableId=value
        )
        estate.expect("anchor-format-invalid", entry.dn)
    # ...and "System.Byte[]" (a byte array passed where a string was expected): no AD user can
    # be named from it, so the candidate is also soft-match-blocked.
    grady = estate.person("Grady", "Archie", sales, created_days=3)
    byte_array = estate.cloud_only(
        grady.upn or "", "Grady Archie", created_days=30, onPremisesImmutableId="System.Byte[]"
    )
    estate.expect("anchor-format-invalid", byte_array["id"])
    estate.expect("soft-match-blocked", grady.dn)

    # anchor-duplicate-ad: a "copy user" script cloned the ConsistencyGuid into a second account.
    for first, last, suffix in (("Debra", "Berger", "test"), ("Enrico", "Cattaneo", "adm")):
        original = estate.person(first, last, staff)
        original.consistency_guid = original.guid.bytes_le
        estate.twin(original)
        clone = estate.person(
            first,
            f"{last} ({suffix})",
            staff,
            alias=f"{first}.{last}.{suffix}".lower(),
            created_days=4,
            consistency_guid=original.guid.bytes_le,
        )
        clone.sam = f"{first[0]}{last}-{suffix}".lower()[:20]
        estate.expect("anchor-duplicate-ad", original.dn)
        estate.expect("anchor-duplicate-ad", clone.dn)
        estate.expect("consistency-guid-differs", clone.dn)
        # The clone hard-matches the original's cloud user: linked to the wrong person.
        estate.expect("anchor-held-by-other", clone.dn)

    # consistency-guid-invalid: the GUID written as ASCII text (36 or 38 bytes). Connect synced
    # those bytes as the anchor, so the pair is matched, but on an anchor no tool converts.
    for first, last, text in (("Irvin", "Sayers", "plain"), ("Allan", "Deyoung", "braced")):
        entry = estate.person(first, last, eng)
        guid_text = str(entry.guid) if text == "plain" else "{" + str(entry.guid).upper() + "}"
        entry.consistency_guid = guid_text.encode("ascii")
        estate.twin(entry)
        estate.expect("consistency-guid-invalid", entry.dn)
    # ...the first 16 characters of the GUID's text, cut to the size of a GUID by the script:
    # 16 bytes like a real value, but text.
    yara = estate.person("Yara", "Haddad", eng)
    yara.consistency_guid = str(yara.guid)[:16].encode("ascii")
    estate.twin(yara)
    estate.expect("consistency-guid-invalid", yara.dn)
    # ...and a 15-byte value (a script that dropped the last byte), on a new hire not yet synced.
    raul = estate.person("Raul", "Razo", eng, created_days=1)
    raul.consistency_guid = raul.guid.bytes_le[:15]
    estate.expect("consistency-guid-invalid", raul.dn)
    estate.expect("unmatched-ad", raul.dn)

    # consistency-guid-differs: migrated from the fabrikam.local forest with ADMT; the
    # ConsistencyGuid carries the old forest's objectGUID and the cloud user holds it.
    for first, last in (("Emily", "Braun"), ("Gerhart", "Moller"), ("Sakura", "Tanaka")):
        entry = estate.person(first, last, users_ou("Finance"), domain=FEDERATED)
        entry.consistency_guid = estate.guid().bytes_le
        estate.twin(entry)
        estate.expect("consistency-guid-differs", entry.dn)


def _plant_matching_cases(estate: Estate) -> None:
    staff, sales = users_ou("Staff"), users_ou("Sales")

    # cloud-orphan: the AD object is gone (deleted while the export deletion threshold held the
    # deletes back) but its cloud user is active and still marked synced.
    for first, last, days in (("Pavel", "Bansky", 3.0), ("Ben", "Walters", 45.0)):
        # Built like a person, then removed from AD: only its cloud user remains.
        ghost = estate.person(first, last, sales)
        estate.ad.remove(ghost)
        orphan = estate.twin(
            ghost, onPremisesLastSyncDateTime=iso(TENANT_LAST_SYNC - timedelta(days=days))
        )
        estate.expect("cloud-orphan", orphan["id"])
        if days > 7:
            estate.expect("stale-sync-object", orphan["id"])
    # ...and one whose AD user still exists but was moved out of scope (OU=Disabled).
    cameron = estate.person("Cameron", "White", DISABLED_OU, uac=514)
    estate.twin(
        cameron,
        accountEnabled=True,
        onPremisesLastSyncDateTime=iso(TENANT_LAST_SYNC - timedelta(days=2)),
    )
    estate.expect("cloud-orphan", cameron.dn)  # the finding names the out-of-scope AD user

    # soft-match-pending: mailboxes created in Exchange Online before the AD account existed.
    for first, last in (("Christie", "Cline"), ("Priya", "Raman")):
        entry = estate.person(first, last, staff, created_days=2)
        estate.cloud_only(entry.upn or "", f"{first} {last}", created_days=20)
        estate.expect("soft-match-pending", entry.dn)
    # ...on UPN only (softMatchOnUpnEnabled is on): the primary SMTP differs.
    kaito = estate.person("Kaito", "Nakamura", staff, created_days=2)
    kaito.mail = f"k.nakamura@{DOMAIN}"
    kaito.proxies = [f"SMTP:k.nakamura@{DOMAIN}", f"smtp:kaito.nakamura@{MAIL_ROUTING}"]
    estate.cloud_only(kaito.upn or "", "Kaito Nakamura", created_days=20)
    estate.expect("soft-match-pending", kaito.dn)

    # soft-match-blocked: the candidate holds an admin role ("Existing Admin Role Conflict":
    # any directory role, privileged or not); Exchange Administrator is not privileged, so
    # Microsoft's fix (remove the role, sync, re-add) is not refused by the 2026 hardening.
    bianca = estate.person("Bianca", "Pisani", staff, created_days=2)
    admin = estate.cloud_only(bianca.upn or "", "Bianca Pisani", created_days=300)
    estate.role(admin, EXCHANGE_ADMIN, eligible=False)
    estate.expect("soft-match-blocked", bianca.dn)
    # ...a custom role no built-in table knows: still a directory role, so still blocked.
    wendy = estate.person("Wendy", "Tran", sales, created_days=2)
    auditor = estate.cloud_only(wendy.upn or "", "Wendy Tran", created_days=250)
    estate.role(auditor, MAILBOX_AUDITOR, eligible=False)
    estate.expect("soft-match-blocked", wendy.dn)
    # A non-privileged admin is NOT a hardening target: the anchor pre-stamped on Nadia's
    # Exchange Administrator account is taken over by the next sync. No finding.
    nadia = estate.person("Nadia", "Okafor", staff, created_days=2)
    exchange_admin = estate.cloud_only(
        nadia.upn or "", "Nadia Okafor", created_days=650, onPremisesImmutableId=nadia.anchor
    )
    estate.role(exchange_admin, EXCHANGE_ADMIN, eligible=False)
    # ...the candidate holds another immutableId: synced from the decommissioned fabrikam.local
    # forest, sync stopped, anchor left behind. That anchor is an orphan too.
    omar = estate.person("Omar", "Haddad", users_ou("Finance"), domain=FEDERATED, created_days=5)
    old = estate.cloud_only(
        omar.upn or "",
        "Omar Haddad",
        created_days=1400,
        onPremisesImmutableId=base64.b64encode(estate.guid().bytes_le).decode(),
        onPremisesSyncEnabled=False,
        onPremisesLastSyncDateTime=iso(TAKEN - timedelta(days=400)),
        onPremisesDistinguishedName=f"CN=Omar Haddad,OU=Users,{OLD_FOREST_DN}",
        onPremisesSamAccountName="ohaddad",
        onPremisesDomainName="fabrikam.local",
    )
    estate.expect("soft-match-blocked", omar.dn)
    estate.expect("cloud-orphan", old["id"])
    # ...not a user: a Microsoft 365 group created in Teams owns the new service mailbox's
    # address (ObjectTypeMismatch).
    helpdesk = estate.person("Helpdesk", "Desk", SERVICE_OU, alias="helpdesk", created_days=5)
    helpdesk.dn = f"CN=Helpdesk,{SERVICE_OU}"
    helpdesk.display_name, helpdesk.given_name, helpdesk.surname = "Helpdesk", None, None
    helpdesk.sam = "helpdesk"
    estate.objects.append(
        {
            "@odata.type": "#microsoft.graph.group",
            "id": str(estate.guid()),
            "displayName": "Helpdesk",
            "mail": f"helpdesk@{DOMAIN}",
            "mailNickname": "helpdesk",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "proxyAddresses": [f"SMTP:helpdesk@{DOMAIN}", f"smtp:helpdesk@{MAIL_ROUTING}"],
        }
    )
    estate.expect("soft-match-blocked", helpdesk.dn)

    # unmatched-ad: new hires waiting for the next cycle (info) and one that has waited a month.
    for first, last, days in (("Nora", "Lindqvist", 1.0), ("Tomasz", "Kowalski", 0.5)):
        entry = estate.person(first, last, sales, created_days=days)
        estate.expect("unmatched-ad", entry.dn)
    fatima = estate.person("Fatima", "Zahra", sales, created_days=30)
    estate.expect("unmatched-ad", fatima.dn)

    # hard-match-blocked: the admin pre-stamped the anchor on an existing cloud account so the
    # next cycle hard-matches it; the 2026 hardening refuses the takeover.
    patti = estate.person("Patti", "Fernandez", staff, created_days=2)
    estate.cloud_only(
        patti.upn or "",
        "Patti Fernandez",
        created_days=1200,
        onPremisesImmutableId=patti.anchor,
        onPremisesSyncEnabled=False,  # synced from the old forest once: identifier left behind
        onPremisesLastSyncDateTime=iso(TAKEN - timedelta(days=200)),
        onPremisesObjectIdentifier=str(estate.guid()),
    )
    estate.expect("hard-match-blocked", patti.dn)
    adele = estate.person("Adele", "Vance", staff, created_days=2)
    target = estate.cloud_only(
        adele.upn or "", "Adele Vance", created_days=700, onPremisesImmutableId=adele.anchor
    )
    estate.role(target, GLOBAL_ADMIN, eligible=True)
    estate.expect("hard-match-blocked", adele.dn)
    ravi = estate.person("Ravi", "Shankar", users_ou("Engineering"), created_days=2)
    target = estate.cloud_only(
        ravi.upn or "", "Ravi Shankar", created_days=500, onPremisesImmutableId=ravi.anchor
    )
    estate.role(target, PRIV_ROLE_ADMIN, eligible=False)
    estate.expect("hard-match-blocked", ravi.dn)
    # ...a privileged role through a role-assignable group: Ezra's account is a member of
    # "Tier1 Helpdesk", which holds Helpdesk Administrator.
    ezra = estate.person("Ezra", "Klein", staff, created_days=2)
    member = estate.cloud_only(
        ezra.upn or "", "Ezra Klein", created_days=420, onPremisesImmutableId=ezra.anchor
    )
    group = {
        "id": str(estate.guid()),
        "displayName": "Tier1 Helpdesk",
        "members": [{"@odata.type": "#microsoft.graph.user", "id": member["id"]}],
    }
    estate.role_groups.append(group)
    estate.role(group, HELPDESK_ADMIN, eligible=False)
    estate.expect("hard-match-blocked", ezra.dn)


def _plant_duplicate_cases(estate: Estate) -> None:
    staff, sales = users_ou("Staff"), users_ou("Sales")
    conflict_at = iso(TAKEN - timedelta(days=9))

    # duplicate-cloud-account: soft match did not happen when the AD user first synced, so Entra
    # created a second user and quarantined the UPN (name1234@tenant.onmicrosoft.com).
    john = estate.person("John", "Smith", staff, created_days=9)
    estate.cloud_only(john.upn or "", "John Smith", created_days=600)
    estate.twin(
        john,
        userPrincipalName=f"john.smith4821@{INITIAL}",
        mail=None,
        proxyAddresses=[f"SMTP:john.smith4821@{INITIAL}", f"smtp:john.smith@{MAIL_ROUTING}"],
        onPremisesProvisioningErrors=[
            provisioning_error("UserPrincipalName", john.upn, conflict_at),
            provisioning_error("ProxyAddresses", f"SMTP:{john.upn}", conflict_at),
        ],
    )
    estate.expect("duplicate-cloud-account", john.dn)
    estate.expect("provisioning-error", john.dn)
    # The drift rule reports a quarantined twin UPN as upn-drift by design (cause named).
    estate.expect("upn-drift", john.dn)
    # ...the primary SMTP quarantined: a cloud-only shared account already owned it.
    sara = estate.person("Sara", "Davis", staff, created_days=9)
    estate.cloud_only(
        f"s.davis@{DOMAIN}",
        "Sara Davis",
        created_days=700,
        proxyAddresses=[f"SMTP:{sara.mail}", f"smtp:s.davis@{DOMAIN}"],
        mail=sara.mail,
    )
    estate.twin(
        sara,
        mail=None,
        proxyAddresses=[f"SMTP:sara.davis@{MAIL_ROUTING}"],
        onPremisesProvisioningErrors=[
            provisioning_error("ProxyAddresses", f"SMTP:{sara.mail}", conflict_at)
        ],
    )
    estate.expect("duplicate-cloud-account", sara.dn)
    estate.expect("provisioning-error", sara.dn)

    # duplicate-ad-attribute: the same smtp alias on two users; the second one's export of it
    # failed, so its cloud user lacks it and carries the conflict.
    lynn = estate.person("Lynn", "Hart", sales)
    lynn.proxies.append(f"smtp:info@{DOMAIN}")
    estate.twin(lynn)
    marcus = estate.person("Marcus", "Reed", sales)
    marcus.proxies.append(f"smtp:info@{DOMAIN}")
    estate.twin(
        marcus,
        proxyAddresses=[p for p in marcus.proxies if "info@" not in p],
        onPremisesProvisioningErrors=[
            provisioning_error("ProxyAddresses", f"smtp:info@{DOMAIN}", conflict_at)
        ],
    )
    for entry in (lynn, marcus):
        estate.expect("duplicate-ad-attribute", entry.dn)
    estate.expect("attribute-conflict-cloud", marcus.dn)
    estate.expect("provisioning-error", marcus.dn)
    # ...the same mailNickname on two users (not unique in Entra, but IdFix and Exchange care).
    for first in ("John", "Jane"):
        entry = estate.person(first, "Doe", staff, alias=f"{first}.doe".lower())
        entry.mail_nickname = "jdoe"
        estate.twin(entry)
        estate.expect("duplicate-ad-attribute", entry.dn)

    # attribute-conflict-cloud: a secondary address owned by a mail contact, and one owned by a
    # cloud-only shared mailbox. Both exports failed and left a provisioning error.
    lidia = estate.person("Lidia", "Holloway", users_ou("Finance"), domain=FEDERATED)
    lidia.proxies.append(f"smtp:lidia.holloway@{DOMAIN}")
    estate.objects.append(
        {
            "@odata.type": "#microsoft.graph.orgContact",
            "id": str(estate.guid()),
            "displayName": "Lidia Holloway (Contoso)",
            "mail": f"lidia.holloway@{DOMAIN}",
            "mailNickname": "lidia.holloway.contoso",
            "proxyAddresses": [f"SMTP:lidia.holloway@{DOMAIN}"],
        }
    )
    estate.twin(
        lidia,
        proxyAddresses=lidia.proxies[:-1],
        onPremisesProvisioningErrors=[
            provisioning_error("ProxyAddresses", f"smtp:lidia.holloway@{DOMAIN}", conflict_at)
        ],
    )
    estate.expect("attribute-conflict-cloud", lidia.dn)
    estate.expect("provisioning-error", lidia.dn)
    carlos = estate.person("Carlos", "Ruiz", sales)
    carlos.proxies.append(f"smtp:sales@{DOMAIN}")  # owned by the cloud-only Sales Team Mailbox
    estate.twin(
        carlos,
        proxyAddresses=carlos.proxies[:-1],
        onPremisesProvisioningErrors=[
            provisioning_error("ProxyAddresses", f"smtp:sales@{DOMAIN}", conflict_at)
        ],
    )
    estate.expect("attribute-conflict-cloud", carlos.dn)
    estate.expect("provisioning-error", carlos.dn)
    # ...a targetAddress pointed at the cloud-only room mailbox by hand: targetAddress is in
    # the same uniqueness space as UPN, mail and proxyAddresses.
    ursula = estate.person("Ursula", "Meyer", sales)
    ursula.target_address = f"SMTP:conf-room-a@{DOMAIN}"
    estate.twin(ursula)
    estate.expect("attribute-conflict-cloud", ursula.dn)

    # provisioning-error on its own: a conflict that was resolved in AD; the error stays on the
    # cloud user until Entra re-evaluates it.
    grant = estate.person("Grant", "Hughes", staff)
    estate.twin(
        grant,
        onPremisesProvisioningErrors=[
            provisioning_error(
                "ProxyAddresses", f"smtp:grant@{DOMAIN}", iso(TAKEN - timedelta(days=60))
            )
        ],
    )
    estate.expect("provisioning-error", grant.dn)


def _plant_drift_cases(estate: Estate) -> None:
    staff, eng = users_ou("Staff"), users_ou("Engineering")

    # upn-suffix-unverified: .local and the unverified AD DNS domain. Synced users got
    # <mailNickname>@contoso.onmicrosoft.com in the cloud.
    kevin = estate.person("Kevin", "Brooks", staff)
    kevin.upn = "kevin.brooks@contoso.local"
    estate.twin(kevin, userPrincipalName=f"kevin.brooks@{INITIAL}")
    olivia = estate.person("Olivia", "Chen", staff)
    olivia.upn = f"olivia.chen@{AD_DNS_DOMAIN}"
    estate.twin(olivia, userPrincipalName=f"olivia.chen@{INITIAL}")
    # (upn-drift does not repeat upn-suffix-unverified for the onmicrosoft.com fallback.)
    for entry in (kevin, olivia):
        estate.expect("upn-suffix-unverified", entry.dn)
    # (IdFix's topleveldomain error on the same UPN is folded into upn-suffix-unverified:
    # one cause, one line; see rules/overlaps.py.)
    # ...a lab suffix no deny-list knew: .lab is not a delegated top-level domain.
    quinn = estate.person("Quinn", "Harper", eng)
    quinn.upn = "quinn.harper@contoso.lab"
    estate.twin(quinn, userPrincipalName=f"quinn.harper@{INITIAL}")
    estate.expect("upn-suffix-unverified", quinn.dn)
    samir = estate.person("Samir", "Patel", eng, created_days=1)
    samir.upn = "samir.patel@contoso.local"
    estate.expect("upn-suffix-unverified", samir.dn)
    estate.expect("unmatched-ad", samir.dn)

    # upn-drift: renamed in AD, the cloud UPN did not follow (synchronizeUpnForManagedUsers
    # off; on a federated domain it never follows on its own).
    hannah = estate.person("Hannah", "Weber", staff, alias="hannah.weber")
    hannah.proxies.append(f"smtp:hannah.schmidt@{DOMAIN}")
    estate.twin(hannah, userPrincipalName=f"hannah.schmidt@{DOMAIN}")
    marco = estate.person("Marco", "Rossi", users_ou("Finance"), domain=FEDERATED)
    marco.proxies.append(f"smtp:m.rossi@{FEDERATED}")
    estate.twin(marco, userPrincipalName=f"m.rossi@{FEDERATED}")
    for entry in (hannah, marco):
        estate.expect("upn-drift", entry.dn)

    # enabled-drift: disabled in AD but enabled in the cloud (high) ...
    for first, last in (("Greg", "Winston"), ("Leah", "Porter")):
        entry = estate.person(first, last, staff, uac=514)
        estate.twin(entry, accountEnabled=True)
        estate.expect("enabled-drift", entry.dn)
    # ... and blocked in the cloud by the security team while enabled in AD (low).
    for first, last in (("Chris", "Green"), ("Tara", "Singh")):
        entry = estate.person(first, last, eng)
        estate.twin(entry, accountEnabled=False)
        estate.expect("enabled-drift", entry.dn)

    # stale-sync-object: matched users whose export keeps failing; last synced three weeks ago.
    for first, last in (("Victor", "Hale"), ("Yuki", "Sato")):
        entry = estate.person(first, last, eng)
        estate.twin(entry, onPremisesLastSyncDateTime=iso(TENANT_LAST_SYNC - timedelta(days=21)))
        estate.expect("stale-sync-object", entry.dn)


def _plant_tenant_cases(estate: Estate) -> None:
    # The sync server has not exported for five hours (threshold 3 h); the switches are read
    # from /directory/onPremisesSynchronization and reported as they are.
    estate.expect("tenant-sync-stale", "onPremisesLastSyncDateTime")
    for switch in (
        "blockSoftMatchEnabled",
        "blockCloudObjectTakeoverThroughHardMatchEnabled",
        "softMatchOnUpnEnabled",
    ):
        estate.expect("tenant-matching-settings", switch)


def _plant_idfix_cases(estate: Estate) -> None:
    staff = users_ou("Staff")
    # A diacritic and a space in the UPN (character). Entra replaced both cloud UPNs with
    # <mailNickname>@<initial domain>: upn-drift as well.
    zoe = estate.person("Zoë", "Müller", staff, alias="zoe.mueller")
    zoe.upn = f"zoë.müller@{DOMAIN}"
    estate.twin(zoe, userPrincipalName=f"zoe.mueller@{INITIAL}")
    anne = estate.person("Anne Marie", "Dubois", staff, alias="annemarie.dubois")
    anne.upn = f"anne marie.dubois@{DOMAIN}"
    estate.twin(anne, userPrincipalName=f"annemarie.dubois@{INITIAL}")
    for entry in (zoe, anne):
        estate.expect("invalid-attribute", entry.dn)
        estate.expect("upn-drift", entry.dn)
    # A space in an smtp proxy value (character).
    peter = estate.person("Peter", "Mueller", staff)
    peter.proxies.append(f"smtp:peter mueller@{DOMAIN}")
    estate.twin(peter, proxyAddresses=peter.proxies[:-1])
    estate.expect("invalid-attribute", peter.dn)
    # A SIP address with a space, from an old Lync deployment (character).
    sven = estate.person("Sven", "Lindberg", staff)
    sven.proxies.append(f"SIP:sven lindberg@{DOMAIN}")
    estate.twin(sven, proxyAddresses=sven.proxies[:-1])
    estate.expect("invalid-attribute", sven.dn)
    # Kenji Iwamoto (cn "Iwamoto Kenji"): IdFix skips any cn starting with "iwam", so his invalid
    # UPN never showed up there; Entra gave his cloud account the fallback UPN.
    kenji = estate.person("Kenji", "Iwamoto", staff, alias="kenji.iwamoto")
    kenji.dn = f"CN=Iwamoto Kenji,{staff}"
    kenji.upn = f"iwamoto kenji@{DOMAIN}"
    estate.twin(kenji, userPrincipalName=f"kenji.iwamoto@{INITIAL}")
    estate.expect("invalid-attribute", kenji.dn)
    estate.expect("upn-drift", kenji.dn)
    # O'Brien's UPN is valid (Microsoft allows the apostrophe; IdFix flags it): no finding.
    aoife = estate.person("Aoife", "O'Brien", staff, alias="aoife.obrien")
    aoife.upn = f"aoife.o'brien@{DOMAIN}"
    estate.twin(aoife)
    # A mailNickname starting with a dot (format).
    ines = estate.person("Ines", "Ortega", staff)
    ines.mail_nickname = ".ines.ortega"
    estate.twin(ines, mailNickname="ines.ortega")
    estate.expect("invalid-attribute", ines.dn)
    # A blank displayName (a single space) on a service account (blank).
    printer = estate.person("svc", "print", SERVICE_OU, alias="svc-print")
    printer.dn, printer.sam, printer.display_name = f"CN=svc-print,{SERVICE_OU}", "svc-print", " "
    printer.given_name = printer.surname = None
    estate.twin(printer, displayName="svc-print")
    estate.expect("invalid-attribute", printer.dn)
    # A UPN prefix over 64 characters and a sAMAccountName over 20 (length) on a new service
    # account: Entra refuses the export, so it is also unmatched.
    alias = "svc-sharepoint-search-crawler-content-source-full-crawl-account-01"
    crawler = estate.person("svc", "crawler", SERVICE_OU, alias=alias, created_days=1.5)
    crawler.dn = f"CN=svc-sharepoint-crawler01,{SERVICE_OU}"
    crawler.sam = "svc-sharepoint-crawler01"
    crawler.mail = crawler.mail_nickname = None
    crawler.proxies = []
    crawler.given_name = crawler.surname = None
    crawler.display_name = "SharePoint crawler"
    estate.expect("invalid-attribute", crawler.dn)
    estate.expect("unmatched-ad", crawler.dn)


def _plant_late_cases(estate: Estate) -> None:
    """Cases added after the rest (last, so the seeded ids of everything above stay put)."""
    # A leftover of the fabrikam.local forest in a MANAGED domain: nobody on-premises has its
    # anchor and it is cloud-only now, so remediation.ps1 clears the anchor (Omar Haddad's,
    # in the federated fabrikam.com, is left to a manual step: a federated user needs one).
    ingrid = estate.cloud_only(
        f"ingrid.berg@{DOMAIN}",
        "Ingrid Berg",
        created_days=1500,
        onPremisesImmutableId=base64.b64encode(estate.guid().bytes_le).decode(),
        onPremisesSyncEnabled=False,
        onPremisesLastSyncDateTime=iso(TAKEN - timedelta(days=420)),
        onPremisesDistinguishedName=f"CN=Ingrid Berg,OU=Users,{OLD_FOREST_DN}",
        onPremisesSamAccountName="iberg",
        onPremisesDomainName="fabrikam.local",
    )
    estate.expect("cloud-orphan", ingrid["id"])

    # Many users, one cause: the Cascade branch office joined from its own forest with UPNs in
    # cascade.local, which is not routable. Synced, they got <alias>@contoso.onmicrosoft.com.
    # One fix (a routable UPN suffix) for 14 people: one upn-suffix-unverified finding each,
    # and one line in the reports' top actions.
    branch = users_ou("Cascade")
    for first, last in CASCADE_PEOPLE:
        entry = estate.person(first, last, branch)
        alias = (entry.upn or "").split("@")[0]
        entry.upn = f"{alias}@cascade.local"
        estate.twin(entry, userPrincipalName=f"{alias}@{INITIAL}")
        estate.expect("upn-suffix-unverified", entry.dn)
