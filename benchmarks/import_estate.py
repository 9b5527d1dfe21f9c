"""Export files of a synthetic estate for bench_import.py: ldifde LDIF, ldapsearch -LLL LDIF and
Graph user pages, N users each, written the way those tools write them.

    python benchmarks/import_estate.py OUT_DIR N

- ldifde: ``changetype: add``, CRLF line endings, lines folded at 80 columns with a leading
  space, binary attributes (objectGUID, objectSid, mS-DS-ConsistencyGuid) and non-ASCII text as
  ``name:: base64``; the attributes of the README's ``-l`` list.
- ldapsearch -LLL: no version line, no comments, LF, folded at 76 columns, base64 as above.
- Graph: compact response pages of 999 users with ``@odata.context`` and ``@odata.nextLink``
  on every page but the last, one page per line (what a paging loop appends to one file).

Deterministic (seeded); about 5% of the names are non-ASCII, 30% of the users have a
mS-DS-ConsistencyGuid, 3% are disabled. Not benchmarks/scale.py: that builds frames, not files.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

PAGE_SIZE = 999
FIRST = ["Ana", "Bo", "Chen", "Dana", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea"]
LAST = ["Smith", "Novak", "Garcia", "Okafor", "Tanaka", "Meyer", "Rossi", "Kowalski", "Silva"]
ACCENTED = ["Zoë", "Łukasz", "Ærø", "Müller", "Sørensen", "Núñez"]
OUS = [
    "OU=Staff",
    "OU=Sales,OU=Staff",
    "OU=IT,OU=Staff",
    "OU=Seasonal Contractors,OU=External,OU=Partners and Vendors",
]
BASE = "DC=corp,DC=contoso,DC=com"
DOMAIN = "contoso.com"


def _fold(text: str, width: int, newline: str) -> str:
    if len(text) <= width:
        return text
    parts = [text[:width]]
    rest = text[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return newline.join(parts)


def _attr(name: str, value: str | bytes) -> str:
    if isinstance(value, bytes):
        return f"{name}:: {base64.b64encode(value).decode()}"
    if not value.isascii():
        return f"{name}:: {base64.b64encode(value.encode()).decode()}"
    return f"{name}: {value}"


def _sid(rid: int) -> bytes:
    subs = (21, 1004336348, 1177238915, 682003330, rid)
    return (
        bytes([1, len(subs)])
        + (5).to_bytes(6, "big")
        + b"".join(s.to_bytes(4, "little") for s in subs)
    )


def users(n: int, seed: int = 0) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for i in range(n):
        first = rng.choice(ACCENTED) if rng.random() < 0.05 else rng.choice(FIRST)
        last = rng.choice(LAST)
        sam = f"u{i:07d}"
        guid = uuid.UUID(int=rng.getrandbits(128), version=4)
        yield {
            "i": i,
            "first": first,
            "last": last,
            "sam": sam,
            "guid": guid,
            "consistency": guid.bytes_le if rng.random() < 0.3 else None,
            "ou": OUS[i % len(OUS)],
            "uac": 514 if rng.random() < 0.03 else 512,
            "rid": 1000 + i,
        }


def ldif_entry(u: dict[str, object], *, ldifde: bool) -> str:
    sam = u["sam"]
    name = f"{u['first']} {u['last']}"
    dn = f"CN={name} {sam},{u['ou']},{BASE}"
    mail = f"{sam}@{DOMAIN}"
    lines = [_attr("dn", dn)]
    if ldifde:
        lines.append("changetype: add")
    lines += [
        "objectClass: top",
        "objectClass: person",
        "objectClass: organizationalPerson",
        "objectClass: user",
        _attr("cn", f"{name} {sam}"),
        _attr("givenName", str(u["first"])),
        _attr("sn", str(u["last"])),
        _attr("displayName", name),
        "whenCreated: 20200109153140.0Z",
        "whenChanged: 20251110160637.0Z",
        _attr("objectGUID", u["guid"].bytes_le),  # type: ignore[attr-defined]
        f"userAccountControl: {u['uac']}",
        _attr("objectSid", _sid(int(u["rid"]))),  # type: ignore[call-overload]
        f"sAMAccountName: {sam}",
        f"userPrincipalName: {mail}",
        f"mail: {mail}",
        f"mailNickname: {sam}",
        f"proxyAddresses: SMTP:{mail}",
        f"proxyAddresses: smtp:{sam}@contoso.mail.onmicrosoft.com",
        f"lastLogonTimestamp: {133_000_000_000_000_000 + int(u['i']) * 10_000_000}",  # type: ignore[call-overload]
        "objectCategory: CN=Person,CN=Schema,CN=Configuration," + BASE,
    ]
    if u["consistency"] is not None:
        lines.append(_attr("mS-DS-ConsistencyGuid", u["consistency"]))  # type: ignore[arg-type]
    newline = "\r\n" if ldifde else "\n"
    width = 80 if ldifde else 76
    return newline.join(_fold(line, width, newline) for line in lines) + newline


def write_ldif(path: Path, n: int, *, ldifde: bool) -> None:
    newline = "\r\n" if ldifde else "\n"
    with path.open("w", encoding="utf-8", newline="") as out:
        for u in users(n):
            out.write(ldif_entry(u, ldifde=ldifde))
            out.write(newline)


CONTEXT = (
    "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,mail,mailNickname,"
    "proxyAddresses,displayName,onPremisesImmutableId,onPremisesSyncEnabled,"
    "onPremisesLastSyncDateTime,onPremisesDistinguishedName,onPremisesSamAccountName,"
    "onPremisesSecurityIdentifier,onPremisesUserPrincipalName,onPremisesDomainName,"
    "accountEnabled,createdDateTime,userType,employeeId,onPremisesProvisioningErrors)"
)


def graph_user(u: dict[str, object]) -> dict[str, object]:
    sam = u["sam"]
    upn = f"{sam}@{DOMAIN}"
    guid: uuid.UUID = u["guid"]  # type: ignore[assignment]
    anchor = u["consistency"] or guid.bytes_le
    return {
        "id": str(uuid.UUID(int=guid.int ^ 0xFFFF, version=4)),
        "userPrincipalName": upn,
        "mail": upn,
        "mailNickname": sam,
        "proxyAddresses": [f"SMTP:{upn}", f"smtp:{sam}@contoso.mail.onmicrosoft.com"],
        "displayName": f"{u['first']} {u['last']}",
        "onPremisesImmutableId": base64.b64encode(anchor).decode(),  # type: ignore[arg-type]
        "onPremisesSyncEnabled": True,
        "onPremisesLastSyncDateTime": "2026-11-23T05:31:12Z",
        "onPremisesDistinguishedName": f"CN={u['first']} {u['last']} {sam},{u['ou']},{BASE}",
        "onPremisesSamAccountName": sam,
        "onPremisesSecurityIdentifier": "S-1-5-21-1004336348-1177238915-682003330-" + str(u["rid"]),
        "onPremisesUserPrincipalName": upn,
        "onPremisesDomainName": "corp.contoso.com",
        "accountEnabled": u["uac"] == 512,
        "createdDateTime": "2020-01-09T15:31:40Z",
        "userType": "Member",
        "employeeId": None,
        "onPremisesProvisioningErrors": [],
    }


def write_graph(path: Path, n: int) -> None:
    batch: list[dict[str, object]] = []
    page = 0
    with path.open("w", encoding="utf-8") as out:
        for u in users(n):
            batch.append(graph_user(u))
            if len(batch) == PAGE_SIZE:
                page += 1
                last = page * PAGE_SIZE >= n
                out.write(_page(batch, None if last else page) + "\n")
                batch = []
        if batch:
            out.write(_page(batch, None) + "\n")


def _page(items: list[dict[str, object]], next_page: int | None) -> str:
    doc: dict[str, object] = {"@odata.context": CONTEXT, "value": items}
    if next_page is not None:
        doc["@odata.nextLink"] = (
            "https://graph.microsoft.com/v1.0/users?$top=999&$skiptoken=RFNwdAIAAQAAAB"
            + str(next_page)
        )
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


FORMATS = {
    "ldifde": ("ad-ldifde.ldf", lambda p, n: write_ldif(p, n, ldifde=True)),
    "ldapsearch": ("ad-ldapsearch.ldif", lambda p, n: write_ldif(p, n, ldifde=False)),
    "graph": ("users.json", write_graph),
}


def write_estate(directory: Path, n: int, formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt, (name, writer) in FORMATS.items():
        if fmt not in formats:
            continue
        path = directory / f"{n}-{name}"
        if not path.exists():
            writer(path, n)
        paths[fmt] = path
    return paths


if __name__ == "__main__":
    for fmt, path in write_estate(Path(sys.argv[1]), int(sys.argv[2])).items():
        print(fmt, path, f"{path.stat().st_size / 1e6:.1f} MB")
