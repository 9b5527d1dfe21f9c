"""The raw capture of a live AD read: every record it read, with the attributes it asked for,
written as ``ldapsearch -LLL`` writes LDIF (RFC 2849), so ``syncaudit import --ad
NAME=raw/ad-NAME.ldif`` of a collected run gives the identical frame and the run can be
replayed or handed to someone without access to the DC.

Values are written as the reader holds them: binary attributes (:data:`BINARY_ATTRIBUTES`
and a binary anchor attribute) always base64 (``::``), so they come back as the same bytes;
text base64 whenever it is not an RFC 2849 SAFE-STRING (non-ASCII, a leading space, colon or
``<``, a trailing space: what ldapsearch encodes), else plain. Lines are not folded (LDIF
readers unfold, and an unfolded file is greppable). The file is written under a temporary
name and renamed when the read completed, so a run never holds half a capture.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from audit.sources.records import Record, Value

# RFC 2849 SAFE-STRING: SAFE-INIT-CHAR then SAFE-CHARs (ASCII without NUL, LF, CR); ldapsearch
# also encodes a value ending in a space, which a reader could trim.
_SAFE_STRING = re.compile(
    r"(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*)?"
)


def ldif_line(name: str, value: Value) -> str:
    """`name: value`, or `name:: base64` for bytes and for text that is not a SAFE-STRING."""
    if isinstance(value, str) and _SAFE_STRING.fullmatch(value) and not value.endswith(" "):
        return f"{name}: {value}\n"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return f"{name}:: {base64.b64encode(raw).decode('ascii')}\n"


def ldif_entry(record: Record, spelling: dict[str, str]) -> str:
    """One record as an LDIF entry, attribute names spelt as `spelling` says (else as held)."""
    lines = [ldif_line("dn", record.dn)]
    for name, values in record.attrs.items():
        shown = spelling.get(name, name)
        lines.extend(ldif_line(shown, value) for value in values)
    lines.append("\n")
    return "".join(lines)


@contextlib.contextmanager
def raw_capture(path: Path) -> Iterator[IO[str]]:
    """A text file at a temporary name beside `path`, renamed to `path` when the block ends
    without an error and removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            yield out
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def captured(
    records: Iterable[Record], out: IO[str] | None, spelling: dict[str, str]
) -> Iterator[Record]:
    """`records`, each written to `out` (when given) as it passes."""
    if out is None:
        yield from records
        return
    write = out.write
    for record in records:
        write(ldif_entry(record, spelling))
        yield record
