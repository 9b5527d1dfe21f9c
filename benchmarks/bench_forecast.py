"""What the forecast adds to analyze, at 100k x 100k and 1M x 1M: time and peak memory.

    .venv/bin/python benchmarks/bench_forecast.py [--sizes 100000,1000000] [--repeat 3] [--write]

For each size N (N AD users x N cloud users, 1% planted problems, benchmarks.scale, generated
and stored as bench_classify.py does), each step in a fresh subprocess reading the Parquet
snapshot, so its peak RSS (VmHWM) is its own; times are the best of --repeat, each repeat on a
fresh RuleContext:

* classify: the full rule set on one RuleContext, as analyze runs it (the baseline, measured
  in the same run);
* + forecast: the same, then `forecast()` + `verdict()` on that context, as analyze runs
  `syncaudit forecast`: the forecast's own time is what it adds;
* + forecast with a change: the Disabled OU entering scope and the Finance OU leaving it (the
  planned scope gets its own context, sharing the cloud side);
* alone: `forecast()` without a context (a library caller with no classification);
* files: forecast.parquet / .csv / .xlsx / .json of the no-change forecast.

Target (issue 15): the forecast adds at most 50% to classify's time and stays within its memory.
"""

from __future__ import annotations

import argparse
import json
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

    from audit.classify import classify, prepared_for_rules, rule_context
    from audit.config import Settings
    from audit.forecast import ScopeChange, forecast
    from audit.forecast_verdict import Forecasted, verdict
    from benchmarks.scale import EXCLUDED_OU

    snapshot = prepared_for_rules(_load(directory))
    settings = Settings()
    finance = EXCLUDED_OU.replace("OU=Disabled", "OU=Finance,OU=Users")
    change = ScopeChange((EXCLUDED_OU,), (finance,)) if kind == "change" else ScopeChange()
    classify_times: list[float] = []
    forecast_times: list[float] = []
    out: dict[str, object] = {}
    for _ in range(repeat):
        context = rule_context(snapshot, settings)
        if kind != "alone":
            start = time.perf_counter()
            out["findings"] = classify(snapshot, settings, context=context).height
            classify_times.append(time.perf_counter() - start)
        if kind == "classify":
            continue
        start = time.perf_counter()
        result = forecast(snapshot, settings, change, context=None if kind == "alone" else context)
        decided = verdict(result)
        forecast_times.append(time.perf_counter() - start)
        out.update(people=result.people.height, counts=decided.counts, decision=decided.decision)
        if kind != "files":  # the next repeat's classify must not run beside this forecast
            del result, decided
    if classify_times:
        out["classify_s"] = min(classify_times)
    if forecast_times:
        out["forecast_s"] = min(forecast_times)
    if kind == "files":
        from audit.outputs.forecast import write_forecast

        with tempfile.TemporaryDirectory(prefix="bench-forecast-files-") as tmp:
            start = time.perf_counter()
            written = write_forecast(Path(tmp), Forecasted(result, decided, 0.0), None)
            out["files_s"] = time.perf_counter() - start
            out["sizes_mb"] = {n: round(p.stat().st_size / 1e6, 1) for n, p in written.items()}
    out["peak_rss_gb"] = peak_rss_gb()
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
        [
            sys.executable,
            str(HERE / "bench_classify.py"),
            "--child",
            "generate",
            str(n),
            str(directory),
        ],
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
        "| AD x cloud | classify (s) / peak (GB) | + forecast (s) / peak (GB) | share | "
        "+ forecast with a change (s) / peak (GB) | share | alone (s) / peak (GB) | "
        "files (s) | people |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for n in [int(s.replace("_", "")) for s in options.sizes.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory(prefix="bench-forecast-") as tmp:
            directory = Path(tmp)
            print(f"{n:,} x {n:,}: generating", file=sys.stderr, flush=True)
            generate(n, directory)
            steps = {}
            for kind in ("classify", "both", "change", "alone", "files"):
                steps[kind] = run_child(kind, directory, 1 if kind == "files" else options.repeat)
                print(f"  {kind}: {steps[kind]}", file=sys.stderr, flush=True)
        c, b, ch, al, fi = (steps[k] for k in ("classify", "both", "change", "alone", "files"))
        base = float(c["classify_s"])  # type: ignore[arg-type]
        share = float(b["forecast_s"]) / base  # type: ignore[arg-type]
        share_change = float(ch["forecast_s"]) / base  # type: ignore[arg-type]
        lines.append(
            f"| {n:,} x {n:,} | {base:.2f} / {c['peak_rss_gb']:.2f} | "
            f"{b['forecast_s']:.2f} / {b['peak_rss_gb']:.2f} | {share:.0%} | "
            f"{ch['forecast_s']:.2f} / {ch['peak_rss_gb']:.2f} | {share_change:.0%} | "
            f"{al['forecast_s']:.2f} / {al['peak_rss_gb']:.2f} | {fi['files_s']:.1f} | "
            f"{int(b['people']):,} |"  # type: ignore[call-overload]
        )
        for label, step, part in (
            ("as things stand", b, share),
            ("with the change", ch, share_change),
        ):
            within = float(step["peak_rss_gb"]) <= float(c["peak_rss_gb"]) * 1.05  # type: ignore[arg-type]
            verdicts.append(
                f"- {n:,} x {n:,}, {label}: the forecast adds {part:.0%} to classify's time "
                f"(target <= {TARGET_SHARE:.0%}: {'met' if part <= TARGET_SHARE else 'MISSED'}); "
                f"peak {step['peak_rss_gb']:.2f} GB against classify's {c['peak_rss_gb']:.2f} GB "
                f"({'within' if within else 'ABOVE'} it, 5% allowed for measurement); outcomes "
                f"{json.dumps(step['counts'])}"
            )
        verdicts.append(
            f"- files at {n:,}: {json.dumps(fi['sizes_mb'])} MB in {fi['files_s']:.1f} s"
        )
    text = "\n".join([*lines, "", *verdicts])
    print(text)
    if options.write:
        from host import RESULTS, hardware

        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        block = (
            f"## Forecast (issue 15): what forecast() + verdict() add to classify\n\n"
            f"Generated by `python benchmarks/bench_forecast.py --sizes {options.sizes} "
            f"--repeat {options.repeat} --write` on {hardware()}, {stamp}. Each step is a "
            "fresh subprocess reading the same Parquet snapshot (1% planted problems); times "
            "are best of the repeats, peak is the step process's VmHWM.\n\n" + text + "\n"
        )
        # replace this script's own block; what follows it (the notes on how the figures
        # moved) is kept
        start, end = "<!-- bench_forecast:start -->", "<!-- bench_forecast:end -->"
        old = RESULTS.read_text(encoding="utf-8")
        if start in old and end in old:
            head, rest = old.split(start, 1)
            new_text = f"{head}{start}\n{block}{end}{rest.split(end, 1)[1]}"
        else:
            new_text = f"{old}\n{start}\n{block}{end}\n"
        RESULTS.write_text(new_text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
