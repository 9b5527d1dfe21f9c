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
    """Three cycles five seconds apart; the export files change after each one (as a
    consultant's weekly exports would, swapped in whole): the third run knows what the second
    added."""
    cfg = config(tmp_path)
    folder = tmp_path / "exports"
    _taken, ad, synced = WEEKS[0]
    flags = exports(folder, ad, synced)
    imports = ImportFlags(ad=[(None, Path(flags[1]))], cloud=[Path(flags[3])])
    stop = threading.Event()
    service = threading.Thread(
        target=serve,
        args=(cfg,),
        kwargs={"exports": imports, "trigger": IntervalTrigger(seconds=5), "stop": stop},
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
            if week < 3:  # the next week's exports, each file replaced whole
                _taken, ad, synced = WEEKS[week]
                staged = tmp_path / f"staged-{week}"
                exports(staged, ad, synced)
                for name in ("ad.ldf", "users.json"):
                    os.replace(staged / name, folder / name)
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


def test_a_cycle_missed_while_the_service_was_down_runs_when_it_is_back(
    tmp_path: Path,
) -> None:
    """The job store keeps the next run time: started again after it passed, the service runs
    the missed cycle at once (within the misfire grace) instead of a whole interval later."""
    cfg = config(tmp_path)
    _taken, ad, synced = WEEKS[0]
    flags = exports(tmp_path / "w", ad, synced)
    imports = ImportFlags(ad=[(None, Path(flags[1]))], cloud=[Path(flags[3])])
    stop = threading.Event()
    stop.set()  # started and stopped at once: the job is stored, due in 4 s
    serve(cfg, exports=imports, trigger=IntervalTrigger(seconds=4), stop=stop)
    settings = load_settings(cfg)
    assert read_state(settings) == {}
    time.sleep(5)  # down when it was due
    stop = threading.Event()
    kwargs = {"exports": imports, "trigger": IntervalTrigger(seconds=4), "stop": stop}
    service = threading.Thread(target=serve, args=(cfg,), kwargs=kwargs)
    back = time.monotonic()
    service.start()
    try:
        wait_for(lambda: read_state(settings).get("state") == "ok")
        ran_after = time.monotonic() - back
    finally:
        stop.set()
        service.join(timeout=60)
    assert ran_after < 3.0  # not the 4 s a fresh schedule would wait
