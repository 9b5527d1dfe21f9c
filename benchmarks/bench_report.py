"""Report rendering time and memory at scale: report.html, report.pdf, findings.xlsx.

    .venv/bin/python benchmarks/bench_report.py                      # 1k, 100k, 1M users
    .venv/bin/python benchmarks/bench_report.py --sizes 1000,100000 --no-write
    .venv/bin/python benchmarks/bench_report.py --sizes 1000000 --issue-rate 0.1   # ~115k findings

For each size N: an estate of N AD users and N cloud users with `--issue-rate` planted problems
(benchmarks.scale.generate_scale_estate), classified once; snapshot and findings are written to
Parquet. Then, each in a fresh subprocess so peak RSS (VmHWM) is the step's own:

* model: read the whole snapshot and the findings, compute sync health and build the report
  model (what analyze does before rendering; the snapshot is already in memory there);
* html / pdf / xlsx: read the findings (and the two snapshot columns the estate counts need),
  build the model with the health computed by the model step, render that one format to a file.
  The time is model + render; the process includes Python, Polars (and weasyprint for the PDF).

Targets (issue 3): PDF <= 5 s and <= 400 MB at any size; HTML <= 10 s at 1M users.
Results go to stdout and, unless --no-write, to the "## Reports" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run as a script: `audit` and `benchmarks.scale` from this tree
RESULTS = HERE / "RESULTS.md"
SECTION = "## Reports"
TARGETS = {"pdf_s": 5.0, "pdf_mb": 400.0, "html_s_1m": 10.0}

STEP = r"""
import json, sys, time
from pathlib import Path
import polars as pl
def vm_hwm_kb():
    # VmHWM: this process image's own peak RSS. ru_maxrss would also count the RSS the forked
    # parent had at exec time (Linux keeps the larger of the two), i.e. the 1M-user estate.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")
work, step = Path(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
from audit.config import ReportSettings, Settings
from audit.model import Snapshot
from audit.outputs.model import Health, build_report, compute_health
from benchmarks.scale import scale_tenant
settings = Settings(report=ReportSettings(company="Contoso"))
findings = pl.read_parquet(work / "findings.parquet")
if step == "model":
    snapshot = Snapshot(
        ad_users=pl.read_parquet(work / "ad_users.parquet"),
        cloud_users=pl.read_parquet(work / "cloud_users.parquet"),
        tenant=scale_tenant(),
    )
    t1 = time.perf_counter()
    health = compute_health(snapshot, findings)
    model = build_report(findings, snapshot, settings, run_id="bench", health=health)
    (work / "health.json").write_text(json.dumps(health.as_json()))
    out = {"codes": len(model.codes), "health": health.as_json()}
else:
    # Only the columns the estate counts read; health comes from the model step.
    snapshot = Snapshot(
        ad_users=pl.read_parquet(work / "ad_users.parquet", columns=["in_scope"]),
        cloud_users=pl.read_parquet(work / "cloud_users.parquet", columns=["deleted_at"]),
        tenant=scale_tenant(),
    )
    h = json.loads((work / "health.json").read_text())
    from audit.outputs import html, pdf, xlsx
    if step == "pdf":
        import weasyprint  # noqa: F401  (import cost counted in "import_s", not the render)
    t1 = time.perf_counter()
    model = build_report(findings, snapshot, settings, run_id="bench",
                         health=Health(h["clean"], h["total"]))
    target = work / {"html": "report.html", "pdf": "report.pdf", "xlsx": "findings.xlsx"}[step]
    if step == "html":
        target.write_text(html.render_html(model), encoding="utf-8")
    elif step == "pdf":
        pdf.render_pdf(model, target)
    else:
        xlsx.render_xlsx(model, target)
    out = {"bytes": target.stat().st_size}
t2 = time.perf_counter()
out.update(step=step, import_s=round(t1 - t0, 3), seconds=round(t2 - t1, 3),
           peak_mb=round(vm_hwm_kb() / 1024, 1))
print(json.dumps(out))
"""


def prepare(work: Path, n: int, issue_rate: float, seed: int) -> dict[str, float]:
    """Generate, classify, write Parquet (in this process; not measured per format)."""
    from audit.classify import classify
    from audit.config import Settings
    from benchmarks.scale import generate_scale_estate

    t0 = time.perf_counter()
    snapshot = generate_scale_estate(n, n, issue_rate=issue_rate, seed=seed)
    t1 = time.perf_counter()
    findings = classify(snapshot, Settings())
    t2 = time.perf_counter()
    snapshot.ad_users.write_parquet(work / "ad_users.parquet")
    snapshot.cloud_users.write_parquet(work / "cloud_users.parquet")
    findings.write_parquet(work / "findings.parquet")
    return {
        "generate_s": round(t1 - t0, 2),
        "classify_s": round(t2 - t1, 2),
        "findings": findings.height,
    }


def run_step(work: Path, step: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", STEP, str(work), step],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"step {step} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.1f} GB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "unknown RAM"
    import polars as pl

    return (
        f"{cpu}, {os.cpu_count()} cores, {ram}; Python {platform.python_version()}, "
        f"Polars {pl.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--issue-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the inputs and reports under this dir")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
            work = Path(tmp)
            if args.keep:
                work = args.keep / str(n)
                work.mkdir(parents=True, exist_ok=True)
            print(f"{n:,} users: generating and classifying...", file=sys.stderr, flush=True)
            prep = prepare(work, n, args.issue_rate, args.seed)
            steps = {}
            for step in ("model", "html", "pdf", "xlsx"):
                steps[step] = run_step(work, step)
                print(f"  {step}: {steps[step]}", file=sys.stderr, flush=True)
            rows.append((n, prep, steps))

    lines = [
        "| users (AD = cloud) | findings | model s / MB | HTML s / MB / size | "
        "PDF s / MB / pages-bound | XLSX s / MB / size |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for n, prep, s in rows:
        m, h, p, x = s["model"], s["html"], s["pdf"], s["xlsx"]
        lines.append(
            f"| {n:,} | {prep['findings']:,} | {m['seconds']} / {m['peak_mb']:.0f} | "
            f"{h['seconds']} / {h['peak_mb']:.0f} / {int(h['bytes']) / 1e6:.1f} MB | "
            f"{p['seconds']} / {p['peak_mb']:.0f} / {int(p['bytes']) / 1e3:.0f} kB | "
            f"{x['seconds']} / {x['peak_mb']:.0f} / {int(x['bytes']) / 1e6:.1f} MB |"
        )
        pdf_ok = (
            float(p["seconds"]) <= TARGETS["pdf_s"] and float(p["peak_mb"]) <= TARGETS["pdf_mb"]
        )
        verdicts.append(
            f"- {n:,} users: PDF {p['seconds']} s, {p['peak_mb']:.0f} MB "
            f"(target <= {TARGETS['pdf_s']:.0f} s and {TARGETS['pdf_mb']:.0f} MB: "
            f"{'met' if pdf_ok else 'MISSED'})"
            + (
                f"; HTML {h['seconds']} s (target <= {TARGETS['html_s_1m']:.0f} s at 1M: "
                f"{'met' if float(h['seconds']) <= TARGETS['html_s_1m'] else 'MISSED'})"
                if n >= 1_000_000
                else ""
            )
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            SECTION,
            "",
            f"Generated by `python benchmarks/bench_report.py --sizes {args.sizes} "
            f"--issue-rate {args.issue_rate}`; each figure from a fresh subprocess "
            "(seconds / peak RSS MB, VmHWM).",
            "",
            f"Machine: {machine()}. Date: {stamp}. Shared machine: wall times are upper bounds.",
            "",
            *lines,
            "",
            "- model: whole snapshot + findings read, sync health computed, report model built.",
            "- HTML / PDF / XLSX: findings read, model built (health from the model step), one "
            "format rendered; Python + Polars (+ weasyprint) imports are in the peak RSS, not "
            "in the seconds. The PDF holds the first 25 objects per code at every size.",
            "",
            *verdicts,
            "",
        ]
    )
    print(section)
    if not args.no_write:
        write_section(section)


def write_section(section: str) -> None:
    """Append the "## Reports" section, or replace only that block (up to the next "## "
    heading): the rest of RESULTS.md belongs to the other benchmarks and stays as it is."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    block = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if block.search(text):
        text = block.sub(lambda _m: section.rstrip("\n") + "\n\n", text, count=1)
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
