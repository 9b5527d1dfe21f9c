"""The errors an operator can fix: one base, so the CLI maps every kind to one line and exit 2
without knowing their names, and anything else is a bug worth a traceback (`--debug`).

Each kind says where the problem is in the words the operator uses for that place: a file and
line, a config key, a run directory, or an origin of a live source ("ldaps://dc01 page 4",
"GET /users page 7").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class SyncauditError(Exception):
    """Bad input, config or usage: `str()` is one line that names where and what."""

    kind = "error"


class UsageError(SyncauditError, ValueError):
    """How a command was called."""

    kind = "usage"


@dataclass(frozen=True)
class Origin:
    """Where a record came from: a file (with its line, or an object in it), or a live source
    and its page. Files print as `path:line` so editors and terminals can jump to them."""

    where: str
    line: int | None = None
    page: int | None = None
    obj: str | None = None

    @classmethod
    def of(cls, place: str | Path | Origin, line: int | None = None) -> Origin:
        if isinstance(place, Origin):
            # a live page keeps its page: the position a reader passes along is that page
            if line is None or place.page is not None:
                return place
            return Origin(place.where, line, place.page, place.obj)
        return cls(str(place), line)

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.where}:{self.line}"
        if self.page is not None:
            named = f", object {self.obj}" if self.obj is not None else ""
            return f"{self.where} page {self.page}{named}"
        if self.obj is not None:
            return f"{self.where}: object {self.obj}"
        return self.where


class InputError(SyncauditError):
    """An input that cannot be read: a file, a page of a live source, a value given on the
    command line. Raised before a Snapshot exists, so there is never a partial snapshot."""

    kind = "input"

    def __init__(
        self,
        origin: str | Path | Origin,
        reason: str,
        line: int | None = None,
        obj: str | None = None,
    ) -> None:
        base = Origin.of(origin, line)
        if obj is not None:
            base = Origin(base.where, base.line, base.page, obj)
        self.origin = base
        self.reason = reason
        super().__init__(self._message())

    # The file-shaped view kept for callers that report a path and a line.
    @property
    def path(self) -> str:
        return self.origin.where

    @property
    def line(self) -> int | None:
        return self.origin.line

    @property
    def obj(self) -> str | None:
        return self.origin.obj

    def _message(self) -> str:
        reason = " ".join(self.reason.split())  # always one line, even for multi-line causes
        return f"{self.origin}: {reason}"


class ConfigError(SyncauditError, ValueError):
    """A configuration problem, phrased as one line naming the file and key."""

    kind = "config"


class RunDirError(SyncauditError, ValueError):
    """A run directory that is missing, incomplete or in the way."""

    kind = "run-dir"


class AnchorError(SyncauditError, ValueError):
    """A value that is not any recognised form of a source anchor."""

    kind = "anchor"


class LookupFailed(SyncauditError, ValueError):
    """A user that is not found or is ambiguous (hardmatch); one line naming the candidates."""

    kind = "lookup"


def short(text: str, limit: int = 200) -> str:
    """A library's message for one error line: whitespace folded, cut at `limit`."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
