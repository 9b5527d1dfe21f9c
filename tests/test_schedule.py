"""`syncaudit serve` (audit/schedule.py): cycles on a trigger against imported runs with
changes between them, the persistent job store and heartbeat, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from audit.config import load_settings
from audit.schedule import serve
from audit.service import ImportFlags, read_state
from tests.test_service import WEEKS, config, exports

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_the_service_runs_cycles_with_history_across_them(tmp_path: Path) -> None:
    """Three cycles three seconds apart; the export files change after each one (as a
    consultant's weekly exports would): the third run knows what the second added."""
    cfg = config(tmp_path)
    folder = tmp_path / "exports"
    _taken, ad, synced = WEEKS[0]
    flags = exports(folder, ad, synced)
    imports = ImportFlags(ad=[(None, Path(flags[1]))], cloud=[Path(flags[3])])
    stop = threading.Event()
    service = threading.Thread(
        target=serve,
        args=(cfg,),
        kwargs={"exports": imports, "trigger": IntervalTrigger(seconds=3), "stop": stop},
    )
    service.start()
    settings = load_settings(cfg)
    seen: list[str] = []
    try:
        for week in (1, 2, 3):
            wait_for(lambda: read_state(settings).get("run_id") not in (None, *seen))
            state = read_state(settings)
            assert state["state"] == "ok", state
            seen.append(state["run_id"])
            if week < 3:  # the next week's exports, in place
                _taken, ad, synced = WEEKS[week]
                for name in ("ad.ldf", "users.json"):
                    (folder / name).unlink()
                folder.rmdir()
                exports(folder, ad, synced)
    finally:
        stop.set()
        service.join(timeout=60)
    assert not service.is_alive()
    runs = tmp_path / "data" / "runs"
    manifests = {
        run: json.loads((runs / run / "manifest.json").read_text(encoding="utf-8"))
        for run in seen[1:]
    }
    second, third = (manifests[run]["analyzed"]["since_previous"] for run in seen[1:])
    assert (second["previous_run"], second["new"], second["resolved"]) == (seen[0], 1, 1)
    assert (third["previous_run"], third["new"], third["resolved"]) == (seen[1], 1, 0)
    assert (tmp_path / "data" / "state" / "jobs.sqlite").is_file()  # the persistent job store
    assert (
        (tmp_path / "data" / "state" / "heartbeat").read_text(encoding="utf-8").startswith("pid ")
    )


def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    cfg = config(tmp_path, '\n[schedule]\ncron = "0 6 * * mon"\ntimezone = "Europe/Amsterdam"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "audit.cli", "serve", "--config", str(cfg)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    heartbeat = tmp_path / "data" / "state" / "heartbeat"
    try:
        wait_for(heartbeat.is_file)
        assert " next " in heartbeat.read_text(encoding="utf-8")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "serving: next cycle" in err and "stopping:" in err


def test_the_systemd_unit_runs_serve_and_stops_gently() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "syncaudit.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == ["serve", "--config"]
    assert service["KillSignal"] == "SIGTERM" and service["TimeoutStopSec"] == "20min"
    assert service["EnvironmentFile"].endswith("secrets.env")  # secrets never in the TOML
    assert unit["Install"]["WantedBy"] == "multi-user.target"
