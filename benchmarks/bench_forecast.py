"""The forecast against classification, at 100k x 100k and 1M x 1M: time and peak memory.

    .venv/bin/python benchmarks/bench_forecast.py [--sizes 100000,1000000] [--repeat 3] [--write]

For each size N (N AD users x N cloud users, 1% planted problems, benchmarks.scale, as
bench_classify.py generates and stores them), each step in a fresh subprocess reading the
Parquet snapshot, so its peak RSS (VmHWM) is its own:

* classify: the full rule set (what `syncaudit analyze` pays), best of --repeat: the baseline,
  measured in the same run;
* forecast: `forecast()` + `verdict()` on the snapshot as it stands (every in-scope person),
  best of --repeat;
* forecast with a change: the Disabled OU entering scope and the Finance OU leaving it;
* files: the same forecast written as forecast.parquet / .csv / .xlsx / .json.

Target (issue 15): the forecast adds at most 50% to classify's time and stays within its memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

TARGET_SHARE = 0.5


def child(kind: str, directory: Path, repeat: int) -> dict[str, object]:
    from bench_classify import _load, peak_rss_gb

    from audit.classify import classify, prepared_for_rules
    from audit.config import Settings
    from audit.forecast import ScopeChange, forecast
    from audit.forecast_verdict import verdict
    from benchmarks.scale import EXCLUDED_OU

    snapshot = prepared_for_rules(_load(directory))
    settings = Settings()
    finance = EXCLUDED_OU.replace("OU=Disabled", "OU=Finance,OU=Users")
    change = ScopeChange((EXCLUDED_OU,), (finance,)) if kind == "change" else ScopeChange()
    times: list[float] = []
    out: dict[str, object] = {}
    for _ in range(repeat):
        start = time.perf_counter()
        if kind == "classify":
            out["findings"] = classify(snapshot, settings).height
        else:
            result = forecast(snapshot, settings, change)
            decided = verdict(result)
            out["people"] = result.people.height
            out["counts"] = decided.counts
            out["decision"] = decided.decision
        times.append(time.perf_counter() - start)
    if kind == "files":
        from audit.outputs.forecast import write_forecast

        with tempfile.TemporaryDirectory(prefix="bench-forecast-files-") as tmp:
            start = time.perf_counter()
            written = write_forecast(Path(tmp), result.people, decided, None)
            out["files_s"] = time.perf_counter() - start
            out["sizes_mb"] = {n: round(p.stat().st_size / 1e6, 1) for n, p in written.items()}
    out.update(best_s=min(times), median_s=statistics.median(times), peak_rss_gb=peak_rss_gb())
    return out


def run_child(kind: str, directory: Path, repeat: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(directory), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def generate(n: int, directory: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "bench_classify.py"), "--child", "generate", str(n), str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"generate failed:\n{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        kind, directory, repeat = args[1], Path(args[2]), int(args[3])
        print(json.dumps(child(kind, directory, repeat)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    options = parser.parse_args(args)
    lines = [
        "| AD x cloud | classify best (s) / peak (GB) | forecast best (s) / peak (GB) | "
        "share of classify | with a scope change (s) / peak (GB) | files (s) | people |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for n in [int(s.replace("_", "")) for s in options.sizes.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory(prefix="bench-forecast-") as tmp:
            directory = Path(tmp)
            print(f"{n:,} x {n:,}: generating", file=sys.stderr, flush=True)
            generate(n, directory)
            steps = {}
            for kind in ("classify", "forecast", "change", "files"):
                steps[kind] = run_child(kind, directory, 1 if kind == "files" else options.repeat)
                print(f"  {kind}: {steps[kind]}", file=sys.stderr, flush=True)
        c, f, ch, fi = steps["classify"], steps["forecast"], steps["change"], steps["files"]
        share = float(f["best_s"]) / float(c["best_s"])  # type: ignore[arg-type]
        lines.append(
            f"| {n:,} x {n:,} | {c['best_s']:.2f} / {c['peak_rss_gb']:.2f} | "
            f"{f['best_s']:.2f} / {f['peak_rss_gb']:.2f} | {share:.0%} | "
            f"{ch['best_s']:.2f} / {ch['peak_rss_gb']:.2f} | {fi['files_s']:.1f} | "
            f"{int(f['people']):,} |"  # type: ignore[call-overload]
        )
        within = float(f["peak_rss_gb"]) <= float(c["peak_rss_gb"])  # type: ignore[arg-type]
        verdicts.append(
            f"- {n:,} x {n:,}: the forecast costs {share:.0%} of classify's time (target <= "
            f"{TARGET_SHARE:.0%}: {'met' if share <= TARGET_SHARE else 'MISSED'}); peak "
            f"{f['peak_rss_gb']:.2f} GB against classify's {c['peak_rss_gb']:.2f} GB "
            f"({'within' if within else 'ABOVE'}); outcomes {json.dumps(f['counts'])}; "
            f"files {json.dumps(fi['sizes_mb'])} MB"
        )
    text = "\n".join(lines + [""] + verdicts)
    print(text)
    if options.write:
        from host import append_to_results, hardware

        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        append_to_results(
            f"\n## Forecast (issue 15): forecast() + verdict() against classify\n\n"
            f"Generated by `python benchmarks/bench_forecast.py --sizes {options.sizes} "
            f"--repeat {options.repeat} --write` on {hardware()}, {stamp}. Each step is a "
            "fresh subprocess reading the same Parquet snapshot (1% planted problems); times "
            "are best of the repeats, peak is the step process's VmHWM.\n\n" + text + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
