"""CSV exports: ``Get-ADUser | Export-Csv``, ``csvde`` and ``Get-MgUser | Export-Csv``.

PowerShell's Export-Csv writes the .NET type name instead of a value it cannot flatten
(``System.Byte[]`` for mS-DS-ConsistencyGuid, ``...ADPropertyValueCollection`` for
proxyAddresses, ``System.String[]`` for Graph arrays): such cells are unusable, so they become
nulls and a warning names the column (FACTS.md section 6). csvde writes LDAP names, binary values
as ``X'hex'`` and joins multiple values with ``;``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Set
from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError
from audit.sources.detect import Notes
from audit.sources.records import Attrs, Record, Value, text_of

GET_ADUSER = "csv-get-aduser"
CSVDE = "csvde"
GET_MGUSER = "csv-get-mguser"

# Export-Csv's text for values it could not flatten.
TYPE_NAME_CELLS = frozenset(
    {
        "system.byte[]",
        "system.string[]",
        "system.object[]",
        "microsoft.activedirectory.management.adpropertyvaluecollection",
    }
)
# Get-ADUser property names that differ from the LDAP attribute they carry.
_AD_ALIASES = {
    "distinguishedname": "dn",
    "sid": "objectsid",
    "created": "whencreated",
    "modified": "whenchanged",
    "surname": "sn",
    "emailaddress": "mail",
    "objectguid": "objectguid",
}
_AD_MULTI_VALUED = frozenset({"proxyaddresses", "objectclass"})


@dataclass(frozen=True)
class CsvTable:
    kind: str  # GET_ADUSER, CSVDE or GET_MGUSER
    header: tuple[str, ...]  # column names as written
    rows: Iterator[tuple[int, list[str]]]  # (line of the row's start, cells)


def csv_table(text: str, path: Path) -> CsvTable:
    """The header, the export it comes from, and the rows with their line numbers."""
    head = text[:65536].splitlines()
    has_type_line = bool(head) and head[0].lstrip().upper().startswith("#TYPE")
    first_line = 2 if has_type_line else 1
    delimiter = delimiter_of(head[first_line - 1] if len(head) >= first_line else "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        if has_type_line:
            next(reader)
        header = tuple(h.strip() for h in next(reader))
    except (csv.Error, StopIteration) as exc:
        raise InputError(path, f"unreadable CSV header: {exc}", line=first_line) from None
    kind = csv_kind(header, path, first_line)
    return CsvTable(kind=kind, header=header, rows=_rows(reader, path, len(header)))


def delimiter_of(header_line: str) -> str:
    """Export-Csv -UseCulture writes ';' in many European locales."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda sep: counts[sep])


def csv_kind(header: tuple[str, ...], path: Path, line: int) -> str:
    names = {h.lower() for h in header}
    if "dn" in names:
        return CSVDE
    if "id" in names and not names & {"objectguid", "distinguishedname"}:
        return GET_MGUSER
    if names & {"distinguishedname", "objectguid", "samaccountname"}:
        return GET_ADUSER
    raise InputError(
        path,
        "CSV header has none of the columns of Get-ADUser (DistinguishedName, ObjectGUID), "
        "csvde (DN) or Get-MgUser (Id)",
        line=line,
    )


def _rows(reader: Iterator[list[str]], path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
    line_num = getattr(reader, "line_num", 0)
    while True:
        start = line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(path, f"malformed CSV: {exc}", line=start) from None
        line_num = getattr(reader, "line_num", start)
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) > width:
            raise InputError(path, f"{len(row)} cells for {width} columns", line=start)
        yield start, row


def ad_records(
    table: CsvTable,
    path: Path,
    wanted: Set[str],
    binary: Set[str],
    notes: Notes,
    blanked: dict[str, int],
) -> Iterator[Record]:
    """AD user CSV rows as LDIF-like records (lower-case LDAP names -> values).

    `blanked` counts, per attribute, the cells Export-Csv wrote as a type name.
    """
    columns = [_ad_column(name, table.kind) for name in table.header]
    if "dn" not in columns:
        raise InputError(path, "CSV has no DistinguishedName (or DN) column", line=1)
    dn_index = columns.index("dn")
    for line, row in table.rows:
        dn = row[dn_index].strip() if dn_index < len(row) else ""
        if not dn:
            raise InputError(path, "row without a DistinguishedName", line=line)
        attrs: Attrs = {}
        for name, column, cell in zip(table.header, columns, row, strict=False):
            if column in wanted and column not in attrs and cell.strip():
                values = _ad_values(cell.strip(), column, name, table.kind, path, line, notes)
                if values is None:
                    blanked[column] = blanked.get(column, 0) + 1
                elif values:
                    if column not in binary:
                        values = [text_of(v) if isinstance(v, bytes) else v for v in values]
                    attrs[column] = values
        yield Record(line=line, dn=dn, attrs=attrs)


def _ad_column(name: str, kind: str) -> str:
    lower = name.lower()
    if kind == CSVDE:
        return lower
    return _AD_ALIASES.get(lower, lower)


def _ad_values(
    cell: str, column: str, name: str, kind: str, path: Path, line: int, notes: Notes
) -> list[Value] | None:
    """The cell's values; None for a type-name cell (the value itself was not exported)."""
    if cell.lower() in TYPE_NAME_CELLS:
        notes.add(
            f"column {name}: {cell} cells (Export-Csv did not flatten the value; read as empty)"
        )
        return None
    if kind == CSVDE:
        parts = cell.split(";") if column in _AD_MULTI_VALUED else [cell]
        return [_csvde_value(p, name, path, line) for p in parts if p]
    if column in _AD_MULTI_VALUED:
        return list(split_multi(cell))
    return [cell]


def _csvde_value(text: str, name: str, path: Path, line: int) -> Value:
    if len(text) >= 3 and text[:2] in ("X'", "x'") and text.endswith("'"):
        try:
            return bytes.fromhex(text[2:-1])
        except ValueError:
            raise InputError(path, f"column {name}: bad X'hex' value", line=line) from None
    return text


def split_multi(cell: str) -> list[str]:
    """A flattened multi-value cell: `-join ';'` or PowerShell's default space join."""
    parts = cell.split(";") if ";" in cell else cell.split()
    return [p.strip() for p in parts if p.strip()]


def graph_rows(table: CsvTable, path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """Get-MgUser rows as Graph objects with lower-case property names (values are text)."""
    columns = [h.lower() for h in table.header]
    if "id" not in columns:
        raise InputError(path, "CSV has no Id column", line=1)
    for line, row in table.rows:
        yield line, {c: cell for c, cell in zip(columns, row, strict=False) if cell != ""}
