"""The demo's planned scope change: the Contractors OU (out of scope today) enters sync scope
and the Interns OU leaves it. Each person planted here has one known outcome of the next sync
(``Estate.forecast``), one per branch a change board meets that the rest of the estate does
not already show: a soft match and a hard match prepared in the cloud, a new user whose UPN
another account's address holds (quarantined), a group's address (AttributeValueMustBeUnique),
an unverified UPN suffix, an admin account never soft-matched, plain new users, and synced
users deleted because their OU leaves scope.
"""

from __future__ import annotations

from audit.demo.estate import BASE_DN, DOMAIN, EXCHANGE_ADMIN, MAIL_ROUTING, Estate, users_ou
from audit.forecast import ScopeChange

CONTRACTORS_OU = f"OU=Contractors,{BASE_DN}"
INTERNS_OU = users_ou("Interns")
PLANNED_CHANGE = ScopeChange(include_ous=(CONTRACTORS_OU,), exclude_ous=(INTERNS_OU,))
INTERNS = (("Ada", "Quist"), ("Bram", "Oort"), ("Cleo", "Vance"))


def plant_planned_change(estate: Estate) -> None:
    """Planted last: every seeded identifier of the other plants stays put."""
    soft = estate.person("Quirin", "Halvorsen", CONTRACTORS_OU)
    estate.cloud_only(soft.upn or "", "Quirin Halvorsen", created_days=40)
    estate.forecast[soft.dn] = ("soft-match", None)

    # the agency's account, with its anchor set ahead of the change: a hard match waiting for
    # the OU, and today an orphan whose holder is out of scope
    hard = estate.person("Rocio", "Delgado", CONTRACTORS_OU)
    estate.cloud_only(hard.upn or "", "Rocio Delgado", onPremisesImmutableId=hard.anchor)
    estate.forecast[hard.dn] = ("hard-match", None)
    estate.expect("cloud-orphan", hard.dn)

    # an external account already carries Sven's address as a secondary proxy: no soft match
    # (primary SMTP and UPN differ), so a new user whose UPN and SMTP are quarantined
    sven = estate.person("Sven", "Aalto", CONTRACTORS_OU)
    external = f"sven.aalto.ext@{DOMAIN}"
    estate.cloud_only(
        external,
        "Sven Aalto (external)",
        proxyAddresses=[f"SMTP:{external}", f"smtp:{sven.upn}"],
    )
    estate.forecast[sven.dn] = ("create", None)

    tariq = estate.person("Tariq", "Nasser", CONTRACTORS_OU)
    tariq.proxies.append(f"smtp:projects@{DOMAIN}")
    estate.objects.append(
        {
            "@odata.type": "#microsoft.graph.group",
            "id": str(estate.guid()),
            "displayName": "Projects",
            "mail": f"projects@{DOMAIN}",
            "mailNickname": "projects",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "proxyAddresses": [f"SMTP:projects@{DOMAIN}", f"smtp:projects@{MAIL_ROUTING}"],
        }
    )
    estate.forecast[tariq.dn] = ("error", "AttributeValueMustBeUnique")

    uma = estate.person("Uma", "Krishnan", CONTRACTORS_OU)
    uma.upn = "uma.krishnan@contractors.local"
    estate.forecast[uma.dn] = ("create", None)

    viktor = estate.person("Viktor", "Horvath", CONTRACTORS_OU)
    estate.forecast[viktor.dn] = ("create", None)

    wanda = estate.person("Wanda", "Kowalczyk", CONTRACTORS_OU)
    admin = estate.cloud_only(wanda.upn or "", "Wanda Kowalczyk", created_days=700)
    estate.role(admin, EXCHANGE_ADMIN, eligible=False)
    estate.forecast[wanda.dn] = ("error", "Existing Admin Role Conflict")

    for first, last in INTERNS:
        intern = estate.person(first, last, INTERNS_OU)
        estate.twin(intern)
        estate.forecast[intern.dn] = ("soft-delete", None)
