"""The unattended cycle (audit/service.py) on imported runs: `syncaudit run` three weeks in a
row with changes between them (history exactly right, retention), `status` for monitoring, a
failed cycle, and the cycle lock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.cli import main
from audit.config import load_settings
from audit.service import cycle_lock, cycle_status, read_state
from tests.sources.helpers import cloud_user, graph_page, guid_b64, ldif_file, person

GUIDS = {
    "Ada": "11111111-1111-4111-8111-111111111111",
    "Bob": "22222222-2222-4222-8222-222222222222",
    "Cyd": "33333333-3333-4333-8333-333333333333",
    "Dan": "44444444-4444-4444-8444-444444444444",
}
# (AD users, the ones synced to the cloud) each week: Bob is synced in week 2, Cyd joins AD
# in week 2 and Dan in week 3, neither synced.
WEEKS = [
    ("2026-11-02T06:00:00Z", ["Ada", "Bob"], ["Ada"]),
    ("2026-11-09T06:00:00Z", ["Ada", "Bob", "Cyd"], ["Ada", "Bob"]),
    ("2026-11-16T06:00:00Z", ["Ada", "Bob", "Cyd", "Dan"], ["Ada", "Bob"]),
]


def exports(folder: Path, ad: list[str], synced: list[str]) -> list[str]:
    folder.mkdir(parents=True)
    ldif = ldif_file(folder / "ad.ldf", [person(n, GUIDS[n]) for n in ad])
    users = [
        cloud_user(
            f"c-{n.lower()}",
            f"{n.lower()}@contoso.com",
            onPremisesImmutableId=guid_b64(GUIDS[n]),
            onPremisesSyncEnabled=True,
        )
        for n in synced
    ]
    cloud = folder / "users.json"
    cloud.write_text(graph_page(users), encoding="utf-8")
    return ["--ad", str(ldif), "--cloud", str(cloud)]


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "syncaudit.toml"
    path.write_text(f'[run]\ndata_dir = "data"\nkeep_runs = 2\n{extra}', encoding="utf-8")
    return path


def cycle(tmp_path: Path, week: int, cfg: Path) -> int:
    taken, ad, synced = WEEKS[week]
    flags = exports(tmp_path / f"week{week + 1}", ad, synced)
    return main(["run", "--config", str(cfg), *flags, "--taken-at", taken])


def since(run_dir: Path) -> dict[str, object]:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return dict(manifest["analyzed"]["since_previous"])


def test_three_cycles_keep_history_and_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)
    runs = tmp_path / "data" / "runs"
    assert cycle(tmp_path, 0, cfg) == 0
    first = next(runs.iterdir())
    assert since(first)["previous_run"] is None
    assert cycle(tmp_path, 1, cfg) == 0
    (second,) = [d for d in runs.iterdir() if d != first]
    assert since(second) == {
        "previous_run": first.name,
        "previous_taken_at": WEEKS[0][0],
        "new": 1,  # Cyd, not synced
        "persisting": since(second)["persisting"],
        "resolved": 1,  # Bob, synced now
    }
    capsys.readouterr()
    assert cycle(tmp_path, 2, cfg) == 0
    out = capsys.readouterr().out
    assert f"since run {second.name}: 1 new, 0 resolved," in out  # Dan
    # keep_runs = 2: the first run went, the two newest stay
    assert not first.exists() and second.exists() and len(list(runs.iterdir())) == 2
    state = read_state(load_settings(cfg))
    assert state["state"] == "ok" and state["removed_runs"] == [first.name]
    assert main(["status", "--config", str(cfg)]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith("last cycle: ok, started ")
    assert status[-1] == "next cycle: not scheduled ([schedule] cron is empty)"


def test_a_failed_cycle_is_recorded_and_status_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)
    flags = exports(tmp_path / "bad", ["Ada"], ["Ada"])
    (tmp_path / "bad" / "users.json").write_text('{"value": [', encoding="utf-8")
    assert main(["run", "--config", str(cfg), *flags]) == 2
    assert not list((tmp_path / "data" / "runs").glob("*/manifest.json"))  # no run
    capsys.readouterr()
    assert main(["status", "--config", str(cfg)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("last cycle: failed")
    assert lines[1].startswith(f"  error: {tmp_path / 'bad' / 'users.json'}")


def test_status_is_overdue_after_a_missed_schedule(tmp_path: Path) -> None:
    cfg = config(tmp_path, '\n[schedule]\ncron = "0 6 * * mon"\ntimezone = "UTC"\n')
    assert cycle(tmp_path, 0, cfg) == 0
    settings = load_settings(cfg)
    started = datetime.fromisoformat(read_state(settings)["started"])
    due = cycle_status(settings, now=started)
    assert due.healthy
    later = cycle_status(settings, now=started + timedelta(days=366))
    assert not later.healthy and any(line.startswith("  overdue:") for line in later.lines)


def test_two_cycles_at_once_the_second_exits_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)
    flags = exports(tmp_path / "w", ["Ada"], ["Ada"])
    with cycle_lock(load_settings(cfg)):
        assert main(["run", "--config", str(cfg), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"syncaudit: error: {tmp_path / 'data' / 'cycle.lock'}: another cycle")
    assert "this one did not start" in err[0]
    # the lock of a process that is gone (the kernel let go of it) does not stop the next one
    (tmp_path / "data" / "cycle.lock").write_text(
        f"pid 999999 since {datetime.now(UTC).isoformat()}\n", encoding="utf-8"
    )
    assert main(["run", "--config", str(cfg), *flags]) == 0


def test_a_cycle_killed_mid_analysis_leaves_no_complete_looking_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL while the demo estate is being analysed: the run has its snapshot but no
    findings or reports and no `analyzed` section, status says the cycle did not finish, and
    the next cycle runs and is not compared with the killed one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from audit.demo import write_demo_inputs

    inputs = write_demo_inputs(tmp_path / "exports")
    args = inputs.import_arguments()
    flags = ["--ad", *(f"{n}={p}" if n else str(p) for n, p in args["ad"])]
    flags += ["--cloud", *map(str, args["cloud"]), "--deleted", str(args["deleted"])]
    cfg = config(tmp_path)
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "audit.cli", "run", "--config", str(cfg), *flags]
    process = subprocess.Popen(
        command,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "data" / "runs"
    try:
        deadline = time.monotonic() + 120
        while not list(runs.glob("*/.analyze.*.partial")):  # analysis under way
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    (killed,) = [d for d in runs.iterdir() if not d.name.startswith(".")]
    manifest = json.loads((killed / "manifest.json").read_text(encoding="utf-8"))
    assert "analyzed" not in manifest
    assert not [p.name for p in killed.iterdir() if p.is_file() and p.name != "manifest.json"]
    capsys.readouterr()
    assert main(["status", "--config", str(cfg)]) == 1
    status = capsys.readouterr().out
    assert "last cycle: running" in status and "it did not finish" in status
    # the next cycle takes the lock the kernel released, and compares with nothing
    assert main(["run", "--config", str(cfg), *flags]) == 1  # the demo has high findings
    assert read_state(load_settings(cfg))["state"] == "findings"
    (done,) = [d for d in runs.iterdir() if d != killed and not d.name.startswith(".")]
    assert since(done)["previous_run"] is None
