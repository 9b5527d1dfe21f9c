"""Thin command line: parse, wire library calls, print, choose the exit code.

Exit codes (DESIGN.md): 0 done and nothing at/above --fail-on; 1 findings at/above it;
2 usage, config or input error — one line on stderr, no traceback unless --debug.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import textwrap
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TextIO

import polars as pl

from audit import pipeline
from audit.anchor import parse_anchor
from audit.cli_forecast import add_forecast_command
from audit.config import Settings, load_settings
from audit.errors import SyncauditError, UsageError
from audit.forecast_run import demo
from audit.history import baseline, compare
from audit.model import Severity
from audit.pipeline import AnalyzeResult
from audit.rules import all_rules, rule_by_code
from audit.rules.overlaps import overlaps_for
from audit.schedule import serve
from audit.service import ImportFlags, cycle_status, run_cycle
from audit.sources.files import CloudExports
from audit.sources.ldap import ReadProgress

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
DISTRIBUTION = "syncaudit"  # [project] name in pyproject.toml


ACCEPT_DROP_HELP = (
    "the sources shrank for real (an OU out of scope): judge this run whole despite "
    "[thresholds] max_drop_percent, and compare later runs with it"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"{DISTRIBUTION} {package_version()}")
        return EXIT_OK
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("syncaudit: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        print(f"syncaudit: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    """Every SyncauditError kind (and an OS error naming its file) is the operator's to fix and
    says so in one line; anything else is ours."""
    text = (
        str(exc)
        if isinstance(exc, SyncauditError | OSError)
        else (f"{type(exc).__name__}: {exc} (this is a bug; rerun with --debug and report it)")
    )
    return terminal_safe(" ".join(text.split()))


# C0/C1 controls (ESC starts terminal sequences: OSC 52 writes the clipboard, others hide or
# rewrite text), line and paragraph separators, and bidi overrides.
_UNSAFE_FOR_TERMINAL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def terminal_safe(text: str) -> str:
    """Text for the operator's terminal: directory values may carry control sequences."""
    return _UNSAFE_FOR_TERMINAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncaudit",
        description="Audit hybrid identity sync between Active Directory and Microsoft Entra ID.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.set_defaults(handler=lambda _args: _usage(parser))
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    p = sub.add_parser("anchor", help="convert a source anchor between all its forms")
    p.add_argument("value", help="GUID, ImmutableId, hex, LDAP filter escape or connector DN")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_anchor)

    p = sub.add_parser("explain", help="what a finding code means and how to fix it")
    p.add_argument("code", nargs="?", help="finding code; omit to list all codes")
    p.set_defaults(handler=cmd_explain)

    p = sub.add_parser("import", help="exports (LDIF, CSV, Graph JSON) -> run directory")
    p.add_argument(
        "--ad",
        nargs="+",
        action="extend",
        required=True,
        metavar="[NAME=]FILE",
        help="AD export(s); NAME= picks the [[ad]] table of the config",
    )
    p.add_argument(
        "--cloud",
        nargs="+",
        action="extend",
        required=True,
        metavar="FILE",
        help="Graph users JSON or Get-MgUser CSV",
    )
    add_tenant_flags(p)
    p.add_argument("--config", type=Path, help="TOML config (scope, anchor attribute, thresholds)")
    p.add_argument("--taken-at", help="ISO time the exports were taken (default: now)")
    p.add_argument("--out", type=Path, required=True, help="new run directory")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser(
        "collect", help="live AD (every [[ad]] table, over LDAPS) -> run directory under data_dir"
    )
    p.add_argument("--config", type=Path, required=True, help="TOML config with [[ad]] tables")
    p.add_argument(
        "--cloud",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="the cloud side from exports (Graph users JSON or Get-MgUser CSV); without it "
        "the cloud side is absent and what rests on it is held back",
    )
    add_tenant_flags(p)
    p.add_argument("--out", type=Path, help="new run directory (default: DATA_DIR/runs/RUN_ID)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="objects read and rate per source on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(handler=cmd_collect)

    p = sub.add_parser("analyze", help="run directory snapshot -> findings")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--config", type=Path, help="override the config stored in the run")
    p.add_argument("--fail-on", help="exit 1 at or above this severity (default: config, high)")
    p.add_argument(
        "--redact",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask UPNs, names and DNs in report.html/.pdf and findings.xlsx "
        "(default: config report.redact)",
    )
    p.add_argument("--accept-drop", action="store_true", help=ACCEPT_DROP_HELP)
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser(
        "run", help="one unattended cycle: collect (or import), analyze, history, retention"
    )
    add_cycle_flags(p)
    p.add_argument("--taken-at", help="with --ad: ISO time the exports were taken (default: now)")
    p.add_argument("--fail-on", help="exit 1 at or above this severity (default: config, high)")
    p.add_argument("--accept-drop", action="store_true", help=ACCEPT_DROP_HELP)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("serve", help="run cycles on the [schedule] cron until stopped")
    add_cycle_flags(p)
    p.set_defaults(handler=cmd_serve, taken_at=None)

    p = sub.add_parser("status", help="how the last cycle ended, when the next is due")
    p.add_argument("--config", type=Path, required=True, help="TOML config ([run] data_dir)")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("diff", help="new / resolved / persisting findings between two runs")
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="the earlier analyzed run")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the later analyzed run")
    p.set_defaults(handler=cmd_diff)

    add_forecast_command(sub, settings_from, progress)

    p = sub.add_parser("demo", help="import and analyze the built-in demo estate")
    p.add_argument("--out", type=Path, default=Path("syncaudit-demo"), help="output directory")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "hardmatch",
        help="guided hard match of one AD user to one cloud user: checks + a small script",
    )
    p.add_argument("--ad", required=True, metavar="SAM|UPN|DN", help="the AD user")
    p.add_argument("--cloud", required=True, metavar="UPN|ID", help="the cloud user")
    p.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--out", type=Path, help="script path (default: RUN_DIR/hardmatch-*.ps1)")
    p.add_argument("--config", type=Path, help="override the config stored in the run")
    p.set_defaults(handler=cmd_hardmatch)
    return parser


def add_cycle_flags(p: argparse.ArgumentParser) -> None:
    """What run and serve take: the config, and the exports a cycle imports instead of reading
    the live sources (cycle_exports)."""
    p.add_argument("--config", type=Path, required=True, help="TOML config ([run] data_dir)")
    p.add_argument(
        "--ad",
        nargs="+",
        action="extend",
        default=[],
        metavar="[NAME=]FILE",
        help="import these AD exports instead of reading [[ad]] live (with --cloud)",
    )
    p.add_argument(
        "--cloud", nargs="+", action="extend", default=[], metavar="FILE", help="cloud exports"
    )
    add_tenant_flags(p)


def add_tenant_flags(p: argparse.ArgumentParser) -> None:
    """The cloud-side export flags besides --cloud, the same for import and collect."""
    p.add_argument("--deleted", type=Path, help="soft-deleted users (deletedItems JSON)")
    p.add_argument("--domains", type=Path, help="GET /domains JSON or a list of verified names")
    p.add_argument("--tenant", type=Path, help="GET /organization (+ onPremisesSynchronization)")
    p.add_argument(
        "--roles",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="roleAssignments / roleEligibilityScheduleInstances JSON",
    )


def settings_from(path: Path | None) -> Settings:
    """The config, with one warning line per key this version does not read yet."""
    settings = load_settings(path)
    for line in settings.not_used_yet:
        progress(f"warning: {line}")
    return settings


def package_version() -> str:
    """The installed distribution's version; from a source tree that is not installed, the
    version in its pyproject.toml."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unknown"
    found = project.get("version") if project.get("name") == DISTRIBUTION else None
    return found if isinstance(found, str) else "unknown"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_ERROR


def cmd_anchor(args: argparse.Namespace) -> int:
    forms = parse_anchor(args.value).as_dict()
    if args.json:
        print(json.dumps(forms, indent=2))
    else:
        width = max(len(k) for k in forms)
        for key, value in forms.items():
            print(f"{key:<{width}}  {value}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    if not args.code:
        for listed in sorted(all_rules(), key=lambda r: (r.meta.family, r.meta.code)):
            meta = listed.meta
            print(f"{meta.code:<26} {meta.severity.name:<8} {meta.family:<11} {meta.title}")
        return EXIT_OK
    rule = rule_by_code(args.code.strip().lower())
    if rule is None:
        raise UsageError(f"unknown finding code {args.code!r}; `syncaudit explain` lists them")
    meta = rule.meta
    width = min(shutil.get_terminal_size((100, 20)).columns, 100)

    def para(text: str) -> str:
        return "\n".join(textwrap.fill(p, width) for p in text.strip().split("\n\n"))

    print(f"{meta.code}  [{meta.severity.name}, family {meta.family}]")
    print(meta.title)
    print()
    print(para(meta.explanation))
    print()
    print("What to do: " + meta.action)
    print()
    print("How to fix:")
    print(para(meta.remediation))
    if meta.remediation_actions:
        print()
        print("Remediation actions: " + ", ".join(meta.remediation_actions))
    overlaps = overlaps_for(meta.code)
    if overlaps:
        print()
        print("One cause, one line:")
        for o in overlaps:
            print(
                para(
                    f"- reported as {o.stronger}, not also as {o.weaker}, on the same {o.same}, "
                    f"when {o.when} ({o.applied})"
                )
            )
    needs = []
    if meta.requires:
        needs.append(f"Held back without {' and '.join(n.value for n in meta.requires)}.")
    needs += [
        f"Without {' and '.join(n.value for n in c.requires)}: not checked for {c.what}."
        for c in meta.cases
    ]
    if meta.caveats:
        needs.append(
            f"Reported without {' and '.join(n.value for n in meta.caveats)}, saying what it "
            "could not rule out."
        )
    if needs:
        print()
        print("What it needs:")
        for line in needs:
            print(para(line))
    if meta.references:
        print()
        print("References:")
        for ref in meta.references:
            print(f"  - {ref}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    result = pipeline.import_exports(
        settings=settings_from(args.config),
        out=args.out,
        ad=[parse_ad_argument(a) for a in args.ad],
        cloud=[Path(c) for c in args.cloud],
        deleted=args.deleted,
        domains=args.domains,
        tenant=args.tenant,
        roles=[Path(r) for r in args.roles],
        taken_at=args.taken_at,
        progress=progress,
    )
    print(f"run directory: {result.run_dir}")
    return EXIT_OK


def cmd_collect(args: argparse.Namespace) -> int:
    show = sys.stderr.isatty() if args.progress is None else args.progress
    meter = ReadMeter(sys.stderr) if show else None
    try:
        result = pipeline.collect(
            settings=settings_from(args.config),
            out=args.out,
            exports=CloudExports(
                cloud=[Path(c) for c in args.cloud],
                deleted=args.deleted,
                domains=args.domains,
                tenant=args.tenant,
                roles=[Path(r) for r in args.roles],
            ),
            progress=meter.line if meter is not None else progress,
            read_progress=meter.update if meter is not None else None,
        )
    finally:
        if meter is not None:
            meter.done()
    print(f"run directory: {result.run_dir}")
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    result = pipeline.analyze(
        args.run_dir,
        settings_from(args.config) if args.config else None,
        redact=args.redact,
        fail_on=_severity_option(args.fail_on),
        accept_drop=args.accept_drop,
        progress=progress,
    )
    print_summary(result)
    return EXIT_FINDINGS if result.failed else EXIT_OK


def _severity_option(option: str | None) -> Severity | None:
    if not option:
        return None
    try:
        return Severity.parse(option)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


def print_summary(result: AnalyzeResult) -> None:
    total = result.findings.height
    print(f"{total} {'finding' if total == 1 else 'findings'} in {result.run_dir}")
    for sentence in result.suspect:
        print(terminal_safe(f"  SUSPECT RUN: {sentence}"))
    if result.counts_by_code:
        width = max(len(code) for code, _s, _n in result.counts_by_code)
        print(f"  {'severity':<9} {'code':<{width}} {'count':>7}")
        for code, severity, n in result.counts_by_code:
            print(f"  {severity:<9} {code:<{width}} {n:>7}")
    totals = ", ".join(f"{n} {s}" for s, n in result.counts_by_severity.items() if n)
    print(f"  by severity: {totals or 'none'}")
    comparison = result.comparison
    if comparison is not None and comparison.previous is not None:
        counts = comparison.counts
        print(
            f"  since run {terminal_safe(comparison.previous.run_id)}: {counts['new']} new, "
            f"{counts['resolved']} resolved, {counts['persisting']} persisting"
        )
    for entry in result.held_back:
        print(terminal_safe(f"  note: {entry.sentence()}"))
    for warning in result.warnings:
        print(terminal_safe(f"  warning: {warning}"))
    outputs = result.outputs
    if "findings.csv" in outputs:
        print(f"  findings: {outputs['findings.csv']} (also .json, .parquet)")
    if "report.html" in outputs:
        print(f"  report: {outputs['report.html']} (also report.pdf, findings.xlsx)")


def cycle_exports(args: argparse.Namespace) -> ImportFlags | None:
    """The import flags of run and serve, or None (collect live)."""
    if args.ad and not args.cloud:
        raise UsageError(f"{args.command} --ad needs --cloud too (an import names both sides)")
    if args.taken_at and not args.ad:
        raise UsageError("run --taken-at is for imports (--ad); a live read is taken now")
    return (
        ImportFlags(
            ad=[parse_ad_argument(a) for a in args.ad],
            cloud=[Path(c) for c in args.cloud],
            deleted=args.deleted,
            domains=args.domains,
            tenant=args.tenant,
            roles=[Path(r) for r in args.roles],
            taken_at=args.taken_at,
        )
        if args.ad or args.cloud
        else None
    )


def cmd_run(args: argparse.Namespace) -> int:
    exports = cycle_exports(args)
    settings = settings_from(args.config)
    fail_on = _severity_option(args.fail_on)
    if fail_on is not None:
        settings = replace(settings, run=replace(settings.run, fail_on=fail_on))
    result = run_cycle(settings, exports=exports, accept_drop=args.accept_drop, progress=progress)
    print_summary(result)
    return EXIT_FINDINGS if result.failed else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    settings_from(args.config)  # its warnings once, at start
    serve(args.config, exports=cycle_exports(args), progress=progress)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = cycle_status(settings_from(args.config))
    for line in status.lines:
        print(terminal_safe(line))
    return EXIT_OK if status.healthy else EXIT_FINDINGS


def cmd_diff(args: argparse.Namespace) -> int:
    earlier, later = baseline(args.run_a), baseline(args.run_b)
    comparison = compare(later.findings, later.taken_at, earlier)
    counts = comparison.counts
    print(
        terminal_safe(
            f"{earlier.run_id} ({earlier.taken_at}) -> {later.run_id} ({later.taken_at}): "
            f"{counts['new']} new, {counts['resolved']} resolved, "
            f"{counts['persisting']} persisting"
        )
    )
    new = comparison.findings.filter(pl.col("status") == "new")
    for heading, frame in (("new", new), ("resolved", comparison.resolved)):
        rows = sorted(
            frame.iter_rows(named=True),
            key=lambda r: (-Severity.parse(r["severity"]), r["code"], r["fingerprint"]),
        )
        for row in rows:
            print(
                terminal_safe(
                    f"  {heading:<8} {row['severity']:<8} {row['code']} {row['fingerprint']}: "
                    f"{row['detail'] or row['title']}"
                )
            )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    result = demo(args.out, progress=progress)
    print_summary(result.analyzed)
    print(f"forecast of the planned scope change: {result.forecast.sentence()}")
    print(f"demo exports: {result.exports} (config: {result.config})")
    return EXIT_OK


def cmd_hardmatch(args: argparse.Namespace) -> int:
    """Exit 0: script ready; 1: written, but blockers remain (manual steps); 2: lookup error."""
    result = pipeline.hardmatch(
        args.run,
        args.ad,
        args.cloud,
        settings=settings_from(args.config) if args.config else None,
        out=args.out,
    )
    for line in result.explanation:
        print(terminal_safe(line))
    for path in result.outputs.values():
        print(f"script: {path} (review it; run it without -Apply first, then with -Apply)")
    return EXIT_FINDINGS if result.blocked else EXIT_OK


def progress(message: str) -> None:
    print(terminal_safe(message), file=sys.stderr, flush=True)


class ReadMeter:
    """Objects read and rate per source: one line rewritten in place on a terminal, else
    (--progress to a log) one line per source every few seconds and when it ends."""

    EVERY = 5.0  # seconds between lines when not on a terminal

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.shown = ""  # the line now on the terminal (live) to be ended by a newline
        self.last: dict[str, float] = {}

    def update(self, at: ReadProgress) -> None:
        text = terminal_safe(
            f"{at.source}: {at.objects:,} objects read in {at.pages:,} "
            f"page{'' if at.pages == 1 else 's'}, "
            f"{at.rate:,.0f}/s" + (f" (attempt {at.attempt})" if at.attempt > 1 else "")
        )
        if self.live:
            self.stream.write("\r" + text.ljust(len(self.shown)))
            self.shown = text
        elif at.finished or at.seconds - self.last.get(at.source, -self.EVERY) >= self.EVERY:
            self.last[at.source] = at.seconds
            self.stream.write(text + "\n")
        self.stream.flush()

    def line(self, message: str) -> None:
        self.done()
        progress(message)

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = ""


def parse_ad_argument(value: str) -> tuple[str | None, Path]:
    """`--ad corp=export.ldif` picks the [[ad]] table named corp; a plain path uses the default."""
    name, sep, path = value.partition("=")
    if sep and name and "/" not in name and "\\" not in name and not Path(value).exists():
        return name, Path(path)
    return None, Path(value)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
