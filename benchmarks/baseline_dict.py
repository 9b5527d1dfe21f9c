"""A plain-Python, dict-based implementation of the same joins classify does: the baseline the
Polars rules are measured against in bench_classify.py.

It is what one would write without a dataframe library: index the cloud users in dicts (by
anchor, by lower-cased UPN and SMTP address), then loop over the AD users once per family.
It computes the same sets of findings as the rules for the joins that matter at scale:

* hard match on the anchor (active holders), anchor-held-by-deleted, anchor-duplicate-ad,
  consistency-guid-invalid / -differs (base64 decode), cloud-orphan (incl. out-of-scope holder);
* soft-match-pending / -blocked (primary SMTP, then UPN; admin roles, immutableId on the
  candidate), unmatched-ad;
* duplicate-ad-attribute (UPN, mail, mailNickname, smtp proxies among in-scope users),
  attribute-conflict-cloud and duplicate-cloud-account (address owners in the cloud);
* provisioning-error, upn-suffix-unverified, upn-drift, enabled-drift, stale-sync-object;
* optionally (``idfix=True``) IdFix's regex checks of UPN, mailNickname and smtp proxies.

It returns a list of (code, ad_dn or cloud_id) tuples; the input is lists of plain dicts with
the frame's column names (converted before timing).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

Row = dict[str, Any]

_UPN_INVALID = re.compile(r"[\s\\%&*+/=?'{}|<>();:,\[\]\"]|[^\x00-\x7f]")
_RFC2822 = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
    r"([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,17}$",
    re.IGNORECASE,
)
_SMTP_INVALID = re.compile(r"[\s<>();,\[\]\"]")
_NON_ROUTABLE = {"local", "lan", "internal", "localdomain", "corp", "home", "test"}


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def _smtp(proxies: list[str] | None) -> list[str]:
    return [p[5:].strip().lower() for p in proxies or () if p[:5].lower() == "smtp:"]


def classify_dicts(
    ad: list[Row],
    cloud: list[Row],
    *,
    verified_domains: set[str],
    tenant_last_sync: datetime,
    stale_object_days: float = 7,
    idfix: bool = False,
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    add = found.append
    in_scope = [u for u in ad if u["in_scope"]]
    active = [c for c in cloud if c["deleted_at"] is None]
    deleted = [c for c in cloud if c["deleted_at"] is not None]

    # -- anchor family: hash "joins" through dicts ------------------------------------------
    holder: dict[str, Row] = {}
    for c in active:
        if c["immutable_id"]:
            holder.setdefault(c["immutable_id"], c)
    deleted_holder = {c["immutable_id"]: c for c in deleted if c["immutable_id"]}
    anchor_count = Counter(u["anchor"] for u in in_scope if u["anchor"])
    all_anchors = {u["anchor"]: u for u in ad if u["anchor"]}
    matched: list[tuple[Row, Row]] = []
    unmatched: list[Row] = []
    for u in in_scope:
        anchor = u["anchor"]
        if anchor and anchor_count[anchor] > 1:
            add(("anchor-duplicate-ad", u["dn"]))
        c = holder.get(anchor) if anchor else None
        if c is not None:
            matched.append((u, c))
            identity = {_lower(c["upn"]), _lower(c["primary_smtp"]), _lower(c["mail"])}
            if (
                _lower(u["upn"]) not in identity
                and _lower(u["primary_smtp"]) not in identity
                and c["on_prem_sid"] != u["object_sid"]
            ):
                add(("anchor-held-by-other", u["dn"]))
        elif anchor and anchor in deleted_holder:
            add(("anchor-held-by-deleted", u["dn"]))
        else:
            unmatched.append(u)
        cg = u["consistency_guid"]
        if cg:
            try:
                raw = base64.b64decode(cg, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 16:
                add(("consistency-guid-invalid", u["dn"]))
            elif raw != uuid.UUID(u["object_guid"]).bytes_le:
                add(("consistency-guid-differs", u["dn"]))
    for c in active:
        holder_ad = all_anchors.get(c["immutable_id"]) if c["immutable_id"] else None
        synced = c["sync_enabled"] or c["immutable_id"]
        if synced and (holder_ad is None or not holder_ad["in_scope"]):
            add(("cloud-orphan", c["id"]))

    # -- address owners in the cloud ----------------------------------------------------------
    by_smtp: dict[str, Row] = {}
    by_upn: dict[str, Row] = {}
    for c in active:
        key = _lower(c["upn"])
        if key:
            by_upn.setdefault(key, c)
        for address in _smtp(c["proxy_addresses"]):
            by_smtp.setdefault(address, c)

    # -- soft match -----------------------------------------------------------------------------
    for u in unmatched:
        candidate = by_smtp.get(_lower(u["primary_smtp"]) or "") or by_upn.get(
            _lower(u["upn"]) or ""
        )
        if candidate is None:
            if u["enabled"]:
                add(("unmatched-ad", u["dn"]))
        elif candidate["immutable_id"] or candidate["admin_roles"] or candidate["eligible_roles"]:
            add(("soft-match-blocked", u["dn"]))
        else:
            add(("soft-match-pending", u["dn"]))

    # -- duplicates in AD, conflicts with the cloud -----------------------------------------
    values: Counter[str] = Counter()
    per_user: list[tuple[Row, set[str]]] = []
    for u in in_scope:
        mine = {
            f"upn:{_lower(u['upn'])}",
            f"mail:{_lower(u['mail'])}",
            f"nick:{_lower(u['mail_nickname'])}",
        }
        mine |= {f"smtp:{a}" for a in _smtp(u["proxy_addresses"])}
        mine.discard("upn:None")
        mine.discard("mail:None")
        mine.discard("nick:None")
        values.update(mine)
        per_user.append((u, mine))
    for u, mine in per_user:
        if any(values[v] > 1 for v in mine):
            add(("duplicate-ad-attribute", u["dn"]))
    match_of = {u["dn"]: c["id"] for u, c in matched}
    for u in in_scope:
        mine_id = match_of.get(u["dn"])
        addresses = [_lower(u["upn"]), *_smtp(u["proxy_addresses"])]
        for address in addresses:
            owner = by_upn.get(address or "") or by_smtp.get(address or "")
            if owner is not None and owner["id"] != mine_id and mine_id is not None:
                add(("attribute-conflict-cloud", u["dn"]))
                break
    for u, c in matched:
        for key in (_lower(u["upn"]), _lower(u["primary_smtp"]), _lower(u["mail"])):
            other = by_upn.get(key or "") or by_smtp.get(key or "")
            if other is not None and other["id"] != c["id"]:
                add(("duplicate-cloud-account", u["dn"]))
                break

    # -- drift, tenant, errors ------------------------------------------------------------------
    for u in in_scope:
        upn = u["upn"]
        if upn and upn.rsplit("@", 1)[-1].lower() not in verified_domains:
            add(("upn-suffix-unverified", u["dn"]))
    for u, c in matched:
        if u["upn"] and c["upn"] and u["upn"].lower() != c["upn"].lower():
            add(("upn-drift", u["dn"]))
        if None not in (u["enabled"], c["account_enabled"]) and (
            u["enabled"] != c["account_enabled"]
        ):
            add(("enabled-drift", u["dn"]))
    cutoff = tenant_last_sync - timedelta(days=stale_object_days)
    for c in active:
        if c["sync_enabled"] and c["last_sync"] is not None and c["last_sync"] < cutoff:
            add(("stale-sync-object", c["id"]))
    for c in cloud:
        if c["provisioning_errors"]:
            add(("provisioning-error", c["id"]))

    if idfix:
        found.extend(_idfix(in_scope))
    return found


def _idfix(users: list[Row]) -> list[tuple[str, str]]:
    found = []
    for u in users:
        bad = False
        upn = u["upn"]
        if upn:
            tld = upn.rsplit(".", 1)[-1].lower()
            bad = (
                len(upn) > 113
                or bool(_UPN_INVALID.search(upn))
                or not _RFC2822.match(upn)
                or tld in _NON_ROUTABLE
            )
        nick = u["mail_nickname"]
        if nick and (len(nick) > 64 or nick.startswith(".")):
            bad = True
        for proxy in u["proxy_addresses"] or ():
            if proxy[:5].lower() == "smtp:":
                address = proxy[5:]
                if len(proxy) > 256 or _SMTP_INVALID.search(address) or not _RFC2822.match(address):
                    bad = True
        if not (u["display_name"] or "").strip():
            bad = True
        if bad:
            found.append(("invalid-attribute", u["dn"]))
    return found
