"""The unattended cycle: `syncaudit run` (one cycle) and `syncaudit status` (how the last one
ended, when the next is due).

A cycle collects (or imports, given export files), analyzes (history, guard and waivers are
analyze's), then applies retention. It holds ``<data_dir>/cycle.lock`` (an flock: the kernel
lets go of it when the process dies, so a killed cycle's lock is taken over, never waited on
forever) and records its start and end in ``<data_dir>/state/cycle.json``, which `status`
reads. A cycle that fails is recorded with its one-line reason; its run, if any, is whatever
collect or import left, which is never a complete-looking run (both stage their writes).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.config import Settings
from audit.errors import SyncauditError
from audit.history import can_be_baseline, run_dirs
from audit.notify import RETRY_WAITS, NotifyError, compose, send
from audit.pipeline import AnalyzeResult, analyze, collect, data_dir, import_exports, new_run_dir
from audit.sources.files import CloudExports
from audit.store import read_manifest, write_file_atomically

LOCK_FILE = "cycle.lock"
LOCK_WAIT = 5.0  # seconds a cycle waits for the lock before it gives up
STATE_FILE = "cycle.json"
# `status` calls a cycle overdue this long after it was due (a cycle takes minutes, not hours).
OVERDUE_AFTER = timedelta(hours=2)
Progress = Callable[[str], None]


class CycleBusy(SyncauditError):
    """Another cycle holds the lock."""

    kind = "usage"


@dataclass(frozen=True)
class ImportFlags:
    """The export files a cycle imports instead of collecting (the `import` flags)."""

    ad: Sequence[tuple[str | None, Path]]
    cloud: Sequence[Path]
    deleted: Path | None = None
    domains: Path | None = None
    tenant: Path | None = None
    roles: Sequence[Path] = ()
    taken_at: str | None = None  # when the exports were taken (default: now)


@contextmanager
def cycle_lock(settings: Settings, wait: float = LOCK_WAIT) -> Iterator[None]:
    """The data directory's cycle lock, or CycleBusy naming who holds it after `wait` seconds
    (long enough for a `status` that looks at the lock, short beside a cycle)."""
    root = data_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    deadline = time.monotonic() + wait
    with path.open("a+", encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise CycleBusy(
                    f"{path}: another cycle is running ({holder}); this one did not start"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {_now().isoformat(timespec='seconds')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_cycle(
    settings: Settings,
    *,
    exports: ImportFlags | None = None,
    environ: Mapping[str, str] | None = None,
    accept_drop: bool = False,
    progress: Progress = lambda _line: None,
) -> AnalyzeResult:
    """One cycle under the lock: collect (the cloud side from `exports` when they name only
    cloud files), or import `exports` when they name AD files; analyze; retention. Recorded in
    the state file whether it succeeds or fails."""
    with cycle_lock(settings):
        started = _now()
        _record(settings, {"state": "running", "started": _iso(started), "pid": os.getpid()})
        try:
            if exports is None or not exports.ad:
                cloud = (
                    CloudExports(
                        cloud=list(exports.cloud),
                        deleted=exports.deleted,
                        domains=exports.domains,
                        tenant=exports.tenant,
                        roles=list(exports.roles),
                    )
                    if exports is not None
                    else CloudExports()
                )
                run_dir = collect(
                    settings=settings, exports=cloud, environ=environ, progress=progress
                ).run_dir
            else:
                run_dir = import_exports(
                    settings=settings,
                    out=new_run_dir(settings),
                    ad=exports.ad,
                    cloud=exports.cloud,
                    deleted=exports.deleted,
                    domains=exports.domains,
                    tenant=exports.tenant,
                    roles=exports.roles,
                    taken_at=exports.taken_at,
                    progress=progress,
                ).run_dir
            result = analyze(run_dir, settings, accept_drop=accept_drop, progress=progress)
            removed = prune_runs(settings, keep=run_dir)
        except Exception as exc:
            _record(
                settings,
                {
                    "state": "failed",
                    "started": _iso(started),
                    "ended": _iso(_now()),
                    "error": " ".join(str(exc).split()) or type(exc).__name__,
                },
            )
            raise
        # A mail that cannot go out is recorded (status fails on it); the run stands.
        mailed = mail_result(result, settings, os.environ if environ is None else environ)
        _record(
            settings,
            {
                "state": "findings" if result.failed else "ok",
                "started": _iso(started),
                "ended": _iso(_now()),
                "run_id": result.run_dir.name,
                "counts_by_severity": result.counts_by_severity,
                "suspect": list(result.suspect),
                "removed_runs": removed,
                "email": mailed,
            },
        )
        return result


def mail_result(
    result: AnalyzeResult,
    settings: Settings,
    environ: Mapping[str, str],
    waits: Sequence[float] = RETRY_WAITS,
) -> dict[str, Any] | None:
    """The run mailed through [email] (None when no smtp_host is set): what was sent, or why
    it was not."""
    if not settings.email.smtp_host or result.report is None:
        return None
    try:
        mail = compose(result.report, result.run_dir, settings.email)
        send(mail, settings, environ, waits)
    except NotifyError as exc:
        return {"sent": False, "error": str(exc)}
    except Exception as exc:  # whatever else stops a mail must not undo the cycle's record
        return {"sent": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
    return {
        "sent": True,
        "to": list(settings.email.to),
        "attached": list(mail.attached),
        "left_out": list(mail.left_out),
    }


def prune_runs(settings: Settings, keep: Path) -> list[str]:
    """Retention: the newest [run] keep_runs runs stay, and so do `keep` (this cycle's run) and
    the newest run a later one can be compared with (history.can_be_baseline: without it the
    safety guard has nothing to measure against), whatever their age. Returns the run ids
    removed."""
    runs = data_dir(settings) / "runs"
    found: list[tuple[str, Path, bool]] = []  # (taken_at, dir, can be a baseline)
    for directory in run_dirs(runs):
        try:
            manifest = read_manifest(directory)
        except (SyncauditError, OSError, ValueError):
            continue  # not a run (or not ours to judge): never deleted
        found.append(
            (str(manifest.get("taken_at") or ""), directory, can_be_baseline(directory, manifest))
        )
    found.sort(key=lambda item: (item[0], item[1].name), reverse=True)
    protected = {keep.resolve()}
    baseline = next((d for _t, d, usable in found if usable), None)
    if baseline is not None:
        protected.add(baseline.resolve())
    removed = []
    for _taken, directory, _complete in found[max(settings.run.keep_runs, 1) :]:
        if directory.resolve() not in protected:
            shutil.rmtree(directory)
            removed.append(directory.name)
    return removed


@dataclass(frozen=True)
class Status:
    lines: tuple[str, ...]
    healthy: bool  # the last cycle ended well and the next one is not overdue


def cycle_status(settings: Settings, now: datetime | None = None) -> Status:
    """What `syncaudit status` prints, and whether monitoring should be told."""
    now = now or _now()
    state = read_state(settings)
    due = next_due(settings, _parse(state.get("started")) if state else None)
    lines = []
    healthy = True
    if not state:
        lines.append(f"no cycle has run in {data_dir(settings)} yet")
        healthy = False
    else:
        ended = state.get("ended") or "-"
        what = state.get("state", "unknown")
        lines.append(f"last cycle: {what}, started {state.get('started')}, ended {ended}")
        if what == "failed":
            lines.append(f"  error: {state.get('error', '')}")
            healthy = False
        if state.get("run_id"):
            counts = state.get("counts_by_severity") or {}
            shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
            lines.append(f"  run {state['run_id']}: {shown}")
        for sentence in state.get("suspect") or []:
            lines.append(f"  suspect run: {sentence}")
        mailed = state.get("email")
        if isinstance(mailed, dict) and mailed.get("sent") is False:
            lines.append(f"  e-mail: not sent: {mailed.get('error', '')}")
            healthy = False
        elif isinstance(mailed, dict):
            lines.append(f"  e-mail: sent to {', '.join(mailed.get('to') or [])}")
        if what == "running" and not _lock_held(settings):
            lines.append("  it did not finish: the process ended without recording an end")
            healthy = False
    if due is None:
        lines.append("next cycle: not scheduled ([schedule] cron is empty)")
    else:
        lines.append(f"next cycle due: {due.isoformat(timespec='minutes')}")
        if now > due + OVERDUE_AFTER:
            lines.append(f"  overdue: nothing has run since {due.isoformat(timespec='minutes')}")
            healthy = False
    return Status(tuple(lines), healthy)


def next_due(settings: Settings, after: datetime | None) -> datetime | None:
    """The first time the [schedule] cron fires after `after` (now when no cycle ran)."""
    if not settings.schedule.cron:
        return None
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    zone = ZoneInfo(settings.schedule.timezone) if settings.schedule.timezone else None
    trigger = CronTrigger.from_crontab(settings.schedule.cron, timezone=zone)
    fire: datetime | None = trigger.get_next_fire_time(None, after or _now())
    return fire


def read_state(settings: Settings) -> dict[str, Any]:
    path = data_dir(settings) / "state" / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _record(settings: Settings, state: dict[str, Any]) -> None:
    folder = data_dir(settings) / "state"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state, indent=2) + "\n"
    write_file_atomically(folder / STATE_FILE, lambda p: p.write_text(text, encoding="utf-8"))


def _lock_held(settings: Settings) -> bool:
    path = data_dir(settings) / LOCK_FILE
    try:
        with path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _parse(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
