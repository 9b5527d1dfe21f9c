"""What a run knows of the runs before it, in the same parent folder: the trend of earlier
analyses, and the redaction key they share so masks stay the same from week to week.

Trend: the run directories beside this one (same parent folder). Each analyzed run's
``manifest.json`` has an ``analyzed`` section with ``counts_by_severity`` and ``health``. Runs
taken after this run's snapshot are left out (re-analysing an old run shows the trend up to
it), as are hidden and unreadable directories; a sibling whose manifest is malformed is left
out with a warning. At most ``HISTORY_RUNS`` earlier runs are shown.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from audit.errors import ConfigError
from audit.outputs.model import SEVERITIES, TrendPoint

HISTORY_RUNS = 25
KEY_ENV = "SYNCAUDIT_REDACT_KEY"
KEY_FILE = ".syncaudit-redact-key"


def load_history(
    run_dir: Path,
    taken_at: str | None,
    limit: int = HISTORY_RUNS,
    warnings: list[str] | None = None,
) -> list[TrendPoint]:
    """Earlier analyzed runs beside `run_dir` (the module docstring says which), oldest first. A
    sibling whose manifest cannot be read is skipped, with a line in `warnings`."""
    points: list[TrendPoint] = []
    parent = run_dir.resolve().parent
    try:
        siblings = [d for d in parent.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return []
    for directory in siblings:
        if directory.resolve() == run_dir.resolve():
            continue
        try:
            point = _trend_point(directory)
        except (ValueError, TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
            if warnings is not None:
                warnings.append(
                    f"earlier run {directory.name} left out of the trend: its manifest is "
                    f"malformed ({type(exc).__name__})"
                )
            continue
        if point is not None and (taken_at is None or _before(point.taken_at, taken_at)):
            points.append(point)
    points.sort(key=lambda p: _sort_key(p.taken_at))
    return points[-limit:]


def _trend_point(directory: Path) -> TrendPoint | None:
    try:
        text = (directory / "manifest.json").read_text(encoding="utf-8")
    except OSError:
        return None  # not a run (or not readable): nothing to say
    manifest = json.loads(text)
    analyzed = manifest.get("analyzed") if isinstance(manifest, dict) else None
    if not isinstance(analyzed, dict) or not isinstance(analyzed.get("counts_by_severity"), dict):
        return None
    counts = {s: int(analyzed["counts_by_severity"].get(s, 0) or 0) for s in SEVERITIES}
    health = analyzed.get("health")
    percent = health.get("percent") if isinstance(health, dict) else None
    taken = manifest.get("taken_at") or analyzed.get("at")
    if not isinstance(taken, str):
        return None
    return TrendPoint(
        run_id=str(manifest.get("run_id") or directory.name),
        taken_at=taken,
        counts_by_severity=counts,
        health_percent=float(percent) if isinstance(percent, int | float) else None,
    )


def _sort_key(iso: str) -> datetime:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _before(iso: str, reference: str) -> bool:
    return _sort_key(iso) <= _sort_key(reference)


def redaction_key(runs_parent: Path | None) -> bytes:
    """The HMAC key: $SYNCAUDIT_REDACT_KEY, else a random key kept beside the run directories."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return _long_enough(from_env.encode("utf-8"), f"${KEY_ENV}")
    if runs_parent is None:
        return secrets.token_bytes(32)
    path = runs_parent / KEY_FILE
    if path.is_symlink():
        # a key someone else chose would make every mask computable by them
        raise ConfigError(f"{path}: is a symbolic link; the redaction key must be a plain file")
    if path.exists():
        return _long_enough(path.read_text(encoding="ascii").strip().encode("ascii"), str(path))
    # Written to a private temporary file and linked into place, so the key file is never
    # visible empty (an empty key would make every mask computable by anyone).
    key = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(prefix=".redact-key.", dir=runs_parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another run created it first: use theirs
            return _long_enough(path.read_text(encoding="ascii").strip().encode("ascii"), str(path))
    finally:
        os.unlink(tmp)
    return key.encode("ascii")


MIN_KEY_BYTES = 32


def _long_enough(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{where}: redaction key shorter than {MIN_KEY_BYTES} bytes; masks would be guessable"
        )
    return key
