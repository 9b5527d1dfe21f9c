"""The `forecast` command of the CLI (cli.py registers it)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from audit.config import Settings
from audit.forecast import ScopeChange
from audit.forecast_run import run_forecast

EXIT_GO, EXIT_BLOCKED = 0, 1


def add_forecast_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    settings_from: Callable[[Path | None], Settings],
    progress: Callable[[str], None],
) -> None:
    p = sub.add_parser(
        "forecast",
        help="what the next sync does to every person after a planned scope change; GO or not",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("--config", type=Path, help="override the config stored in the run")
    p.add_argument(
        "--include-ou",
        action="append",
        default=[],
        metavar="DN",
        help="an OU (with its sub-OUs) entering sync scope; repeatable",
    )
    p.add_argument(
        "--exclude-ou",
        action="append",
        default=[],
        metavar="DN",
        help="an OU (with its sub-OUs) leaving sync scope; repeatable",
    )
    p.add_argument(
        "--enable-sync",
        action="store_true",
        help="the tenant has never synced: forecast the first sync cycle",
    )

    def cmd_forecast(args: argparse.Namespace) -> int:
        change = ScopeChange(tuple(args.include_ou), tuple(args.exclude_ou), args.enable_sync)
        result = run_forecast(
            args.run_dir,
            settings_from(args.config) if args.config else None,
            change,
            progress=progress,
        )
        v = result.verdict
        print(v.sentence())
        print(f"change: {v.change}")
        print("outcomes: " + ", ".join(f"{o} {n}" for o, n in v.counts.items()))
        print(f"deletions: {v.deletions} (threshold {v.deletion_threshold})")
        for b in v.blockers:
            flag = " [NO-GO]" if b.no_go else ""
            print(f"  {b.people:>6}  {b.title}{flag}\n          fix: {b.fix}")
        for note in v.notes:
            print(f"assumed: {note}")
        print(f"forecast: {result.outputs['forecast.xlsx']} (also .csv, .parquet, .json)")
        report = result.analysis.outputs.get("report.html")
        if report:
            print(f"report: {report} (forecast section)")
        return EXIT_GO if result.go else EXIT_BLOCKED

    p.set_defaults(handler=cmd_forecast)
