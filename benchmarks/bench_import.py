"""Import speed and peak memory of the file readers (issue 11 item 8): LDIF through today's
exact (record by record) reader; Graph user pages through the exact reader (json, one object at
a time) and through the bulk reader (audit/sources/entra_bulk.py, Polars).

    python benchmarks/bench_import.py [--sizes 100000,1000000] [--exact-sizes 100000]
        [--formats ldifde,ldapsearch,graph] [--write]

For each size N, benchmarks/import_estate.py writes N users as ldifde LDIF, ldapsearch -LLL LDIF
and Graph user pages (999 per page with @odata.nextLink; in a temporary directory, reused within
the run). Each (format, way) is then imported in a fresh subprocess: wall time of the import
alone (the frame included), users/s, and the peak RSS growth (VmHWM at the end minus RSS once
Python, Polars and audit are imported) against the file size. The exact LDIF reader is measured
only for --exact-sizes (minutes at 1M on a loaded machine). Prints a table; --write appends it
to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from benchmarks.host import append_to_results, hardware, status_kb  # noqa: E402

TARGET_USERS_PER_S = 200_000
TARGET_RSS_FACTOR = 2.0


def child(fmt: str, path: Path, way: str) -> dict[str, float]:
    import time
    from datetime import UTC, datetime

    from audit.config import Settings
    from audit.sources import files
    from audit.sources.ad import AdRows
    from audit.sources.entra import CloudUsers, cloud_users_frame

    base_kb = status_kb("VmRSS")
    start = time.perf_counter()
    if fmt == "graph":
        files.BULK_GRAPH = way == "bulk"
        users = CloudUsers()
        taken = datetime(2026, 11, 23, 6, tzinfo=UTC)
        files.read_cloud_files([path], users, taken, deleted=False)
        rows = cloud_users_frame(users).height
        if way == "bulk" and not users.parts:
            raise SystemExit("the bulk path fell back to the exact one")
    else:
        ad_rows = AdRows()
        files.read_ad_file(path, None, Settings(), ad_rows)
        rows = ad_rows.frame().height
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": rows,
        "growth_mb": (status_kb("VmHWM") - base_kb) / 1024,
    }


def run_child(fmt: str, path: Path, way: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's audit, not an installed one
    out = subprocess.run(
        [sys.executable, __file__, "--child", fmt, str(path), way],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def machine() -> str:
    import polars as pl

    return (
        f"{hardware()}; Python {platform.python_version()}, "
        f"Polars {pl.__version__}; load average at start {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--exact-sizes", default="100000")
    parser.add_argument("--formats", default="ldifde,ldapsearch,graph")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--dir", help="keep the generated files here (reused by later runs)")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        fmt, path, way = args.child
        print(json.dumps(child(fmt, Path(path), way)))
        return
    from import_estate import write_estate

    sizes = [int(s) for s in args.sizes.split(",")]
    exact_sizes = {int(s) for s in args.exact_sizes.split(",") if s}
    formats = set(args.formats.split(","))
    rows = []
    parser_dir = args.dir
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            paths = write_estate(Path(parser_dir or tmp), n, formats)
            for fmt, path in paths.items():
                if fmt not in formats:
                    continue
                size_mb = path.stat().st_size / 1e6
                ways = ["exact", "bulk"] if fmt == "graph" else []
                if fmt != "graph" and n in exact_sizes:
                    ways = ["exact"]
                for way in ways:
                    result = run_child(fmt, path, way)
                    if result["rows"] != n:
                        raise SystemExit(f"{fmt} {way}: {result['rows']} rows, expected {n}")
                    row = (
                        f"| {n:,} | {fmt} | {size_mb:.0f} MB | {way} | {result['seconds']:.2f} | "
                        f"{n / result['seconds']:,.0f} | {result['growth_mb']:,.0f} MB "
                        f"({result['growth_mb'] / size_mb:.1f}x) |"
                    )
                    print(row, flush=True)
                    rows.append(row)
    header = [
        "| users | format | file | path | seconds | users/s | peak RSS growth (x file) |",
        "|---|---|---|---|---|---|---|",
    ]
    text = "\n".join(
        [
            "",
            "## Import speed (issue 11 item 8)",
            "",
            f"Machine: {machine()}.",
            f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Shared machine: wall times are "
            "upper bounds. `benchmarks/bench_import.py`, each run in a fresh subprocess.",
            "",
            *header,
            *rows,
            "",
        ]
    )
    print(text)
    if args.write:
        append_to_results(text)


if __name__ == "__main__":
    main()
