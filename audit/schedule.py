"""`syncaudit serve`: the cycle of audit/service.py on the [schedule] cron, with apscheduler 3.

- The job lives in a SQLite job store in ``<data_dir>/state/jobs.sqlite``, so a restart keeps
  its next run time; a cycle missed while the service was down runs once when it comes back
  (coalesce, within ``MISFIRE_GRACE``), and never two at once (max_instances 1, and the cycle
  lock besides, which also keeps a manual `syncaudit run` out of its way).
- The job names the config file, not its contents: each cycle reads the config afresh, so an
  edited config takes effect at the next cycle without a restart.
- ``<data_dir>/state/heartbeat`` is rewritten every ``HEARTBEAT_SECONDS`` (pid, time, next due)
  for whoever watches the service.
- SIGTERM or SIGINT stop it: a cycle in progress finishes first (systemd's TimeoutStopSec then
  SIGKILL bounds the wait; a killed cycle leaves no complete-looking run, as collect, import
  and analyze stage their writes).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from audit.config import load_settings
from audit.errors import ConfigError, SyncauditError
from audit.pipeline import data_dir
from audit.service import ImportFlags, run_cycle
from audit.store import write_file_atomically

JOB_ID = "syncaudit-cycle"
MISFIRE_GRACE = 6 * 3600  # seconds: a cycle missed by up to six hours still runs (once)
HEARTBEAT_SECONDS = 60.0
Progress = Callable[[str], None]


def scheduled_cycle(config: str, exports: ImportFlags | None = None) -> None:
    """The job: one cycle with the config as it is now, one line to the service's log (stderr:
    journald under systemd); a failure is also in state/cycle.json, and the next cycle runs
    as scheduled."""
    try:
        result = run_cycle(load_settings(config), exports=exports)
    except SyncauditError as exc:
        print(f"syncaudit: cycle failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return
    counts = ", ".join(f"{n} {s}" for s, n in result.counts_by_severity.items() if n)
    print(f"syncaudit: cycle done: run {result.run_dir.name}: {counts or 'no findings'}")


def serve(
    config: Path,
    *,
    exports: ImportFlags | None = None,
    trigger: Any = None,
    stop: threading.Event | None = None,
    progress: Progress = lambda _line: None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> None:
    """Run cycles on `trigger` (default: the config's [schedule] cron in its timezone) until
    `stop` is set or SIGTERM/SIGINT arrives (in the main thread)."""
    settings = load_settings(config)
    zone = ZoneInfo(settings.schedule.timezone) if settings.schedule.timezone else None
    if trigger is None:
        if not settings.schedule.cron:
            raise ConfigError(f"{config}: [schedule] cron is empty: nothing to serve")
        trigger = CronTrigger.from_crontab(settings.schedule.cron, timezone=zone)
    state = data_dir(settings) / "state"
    state.mkdir(parents=True, exist_ok=True)
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(url=f"sqlite:///{state / 'jobs.sqlite'}"),
            "memory": MemoryJobStore(),
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
        timezone=zone or "UTC",
    )
    kwargs = {"config": str(config.resolve()), "exports": exports}
    done = stop or threading.Event()

    def beat() -> None:
        job = scheduler.get_job(JOB_ID)
        due = job.next_run_time.isoformat(timespec="seconds") if job and job.next_run_time else "-"
        now = datetime.now(UTC).isoformat(timespec="seconds")
        text = f"pid {os.getpid()} at {now} next {due}\n"
        write_file_atomically(state / "heartbeat", lambda p: p.write_text(text, encoding="utf-8"))

    scheduler.add_job(
        beat, "interval", seconds=heartbeat_seconds, id="heartbeat", jobstore="memory"
    )
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: done.set())
    # Started paused, so the stored job is read before anything runs: kept when it is the same
    # schedule (its next run time, missed or not, stands: a cycle missed while the service was
    # down then runs once, within MISFIRE_GRACE), replaced when the config changed it.
    scheduler.start(paused=True)
    stored = scheduler.get_job(JOB_ID)
    if stored is None or str(stored.trigger) != str(trigger) or stored.kwargs != kwargs:
        scheduler.add_job(scheduled_cycle, trigger, id=JOB_ID, replace_existing=True, kwargs=kwargs)
    scheduler.resume()
    beat()
    job = scheduler.get_job(JOB_ID)
    progress(f"serving: next cycle {job.next_run_time if job else 'not scheduled'}")
    try:
        done.wait()
    finally:
        progress("stopping: a cycle in progress finishes first")
        scheduler.shutdown(wait=True)
