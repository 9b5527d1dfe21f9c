"""Samba's own view of a test DC's users, straight from sam.ldb with ldbsearch (LMDB allows a
reader beside the running DC): what the live reader's results are checked against."""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass

from tests.ad.samba_dc import DcInfo


@dataclass(frozen=True)
class SambaUser:
    dn: str
    sam: str
    object_guid: uuid.UUID
    consistency_guid: bytes | None


def _value(text: str) -> bytes:
    """ldbsearch prints a printable value as `name: text`, any other as `name:: base64`."""
    return base64.b64decode(text[2:]) if text.startswith(": ") else text.removeprefix(" ").encode()


def samba_users(dc: DcInfo) -> list[SambaUser]:
    """Every object of class user (computers included) under the DC's base DN."""
    out = subprocess.run(
        [
            "ldbsearch", "-H", str(dc.directory / "private" / "sam.ldb"),
            f"--configfile={dc.directory / 'etc' / 'smb.conf'}",
            "-b", dc.base_dn, "(objectClass=user)",
            "sAMAccountName", "objectGUID", "mS-DS-ConsistencyGuid",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    users = []
    for block in out.replace("\n ", "").split("\n\n"):
        values: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            values[name.lower()] = value
        if "dn" not in values or "objectguid" not in values:
            continue
        consistency = values.get("ms-ds-consistencyguid")
        users.append(
            SambaUser(
                dn=_value(values["dn"]).decode("utf-8"),
                sam=values["samaccountname"].strip(),
                object_guid=uuid.UUID(values["objectguid"].strip()),
                consistency_guid=_value(consistency) if consistency is not None else None,
            )
        )
    return users
