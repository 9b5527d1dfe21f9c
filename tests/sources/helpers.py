"""Builders for crafted export files: LDIF with folding and base64, Graph pages."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from audit.config import AdSource, Settings

REAL_WORLD = Path(__file__).resolve().parents[1] / "data"  # exports nobody here wrote
TAKEN_AT = "2026-11-23T06:00:00Z"


def settings(**ad: Any) -> Settings:
    """Settings with one [[ad]] table named corp (scope and anchor options as keywords)."""
    return Settings(ad=(AdSource(name="corp", **ad),))


def guid_b64(guid: str) -> str:
    return base64.b64encode(uuid.UUID(guid).bytes_le).decode()


def ldif_line(name: str, value: str | bytes, *, fold: int = 76) -> str:
    """`name: value`, or `name:: base64` when the value is bytes or not safe text; folded."""
    if isinstance(value, bytes) or not _safe(value):
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        text = f"{name}:: {base64.b64encode(raw).decode()}"
    else:
        text = f"{name}: {value}"
    return fold_line(text, fold)


def fold_line(text: str, width: int) -> str:
    if width <= 1 or len(text) <= width:
        return text
    parts = [text[:width]]
    rest = text[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return "\n".join(parts)


def _safe(value: str) -> bool:
    # RFC 2849 SAFE-STRING: ASCII without NUL/CR/LF, not starting with space, ':' or '<'.
    return (
        value.isascii()
        and not any(c in value for c in "\x00\r\n")
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )


def ldif_entry(
    dn: str, attrs: Mapping[str, Sequence[str | bytes] | str | bytes], fold: int = 76
) -> str:
    lines = [ldif_line("dn", dn, fold=fold)]
    for name, values in attrs.items():
        items = [values] if isinstance(values, str | bytes) else list(values)
        lines.extend(ldif_line(name, v, fold=fold) for v in items)
    return "\n".join(lines) + "\n"


def person(
    cn: str,
    guid: str,
    *,
    ou: str = "OU=Staff,DC=corp,DC=contoso,DC=com",
    uac: int = 512,
    **extra: Sequence[str | bytes] | str | bytes,
) -> tuple[str, dict[str, Any]]:
    dn = f"CN={cn},{ou}"
    attrs: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": cn,
        "sAMAccountName": cn.lower().replace(" ", "."),
        "userPrincipalName": f"{cn.lower().replace(' ', '.')}@contoso.com",
        "objectGUID": uuid.UUID(guid).bytes_le,
        "userAccountControl": str(uac),
    }
    attrs.update(extra)
    return dn, attrs


def ldif_file(path: Path, entries: Iterable[tuple[str, Mapping[str, Any]]], **kw: Any) -> Path:
    path.write_text(
        "\n".join(ldif_entry(dn, attrs, **kw) for dn, attrs in entries), encoding="utf-8"
    )
    return path


def graph_page(items: list[dict[str, Any]], next_link: str | None = None, context: str = "") -> str:
    page: dict[str, Any] = {
        "@odata.context": context or "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": items,
    }
    if next_link:
        page["@odata.nextLink"] = next_link
    return json.dumps(page, indent=1)


def cloud_user(user_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    user = {"id": user_id, "userPrincipalName": upn, "proxyAddresses": [f"SMTP:{upn}"]}
    user.update(extra)
    return user
