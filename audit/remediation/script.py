"""A Plan -> remediation.ps1: the Jinja environment for PowerShell (its ``finalize`` refuses
any value not made safe by ps_literal/ps_comment), render_plan, and the run's script written as
pure ASCII with CRLF."""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import polars as pl

from audit.config import Settings
from audit.model import Tenant
from audit.powershell import (
    PsCode,
    UnsafeValue,
    comment_text,
    identifier,
    literal_problem,
    ps_literal,
    valid_guid,
)
from audit.remediation.actions import ACTIONS, CLOUD, ON_PREMISES, TEMPLATE_DIR
from audit.remediation.permissions import PERMISSIONS
from audit.remediation.plan import Plan, options_from_settings, plan_findings
from audit.store import write_file_atomically
from audit.templates import templates_dir

TEMPLATE = f"{TEMPLATE_DIR}/main.ps1.j2"
SCRIPT_NAME = "remediation.ps1"


# --- rendering ------------------------------------------------------------------------------------


def _finalize(value: object) -> object:
    # The only things a template may print: text made safe by this module, and numbers.
    if isinstance(value, PsCode):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(
        f"a {type(value).__name__} reached the PowerShell template without ps_literal/ps_comment"
    )


def comment_lines(text: object, width: int = 92, limit: int = 2000) -> list[PsCode]:
    """Comment text wrapped to lines (each made safe by comment_text: no line breaks inside)."""
    flat = str(comment_text(text, limit=limit))
    return [PsCode(line) for line in textwrap.wrap(flat, width) or [""]]


@cache
def ps_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=False,  # noqa: S701 (PowerShell, not HTML: values go through ps_literal)
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ps_literal"] = ps_literal
    env.filters["ps_comment"] = comment_text
    env.filters["ps_comment_lines"] = comment_lines
    env.filters["ps_name"] = identifier
    env.globals["ps_static"] = static_part
    return env


@cache
def static_part(name: str) -> PsCode:
    """A static PowerShell part of the script (report_templates/remediation/<name>), inserted as
    it is: the template never interprets it. Without its last line break, which the template
    line that inserts it supplies."""
    path = templates_dir() / TEMPLATE_DIR / name
    return PsCode(path.read_text(encoding="ascii").removesuffix("\n"))


@dataclass(frozen=True)
class ScriptHeader:
    run_id: str
    tenant: str
    taken_at: str
    generated: str
    kind: str = "remediation"  # or "hardmatch"
    explanation: tuple[str, ...] = ()
    tenant_id: str | None = None  # the script connects to this tenant only


def render_plan(plan: Plan, header: ScriptHeader) -> str:
    counts = Counter(c.action for c in plan.calls)
    codes: dict[str, Counter[str]] = {}
    for c in plan.calls:
        codes.setdefault(c.action, Counter())[c.code] += 1
    fixes = [
        (
            counts[a],
            a,
            ", ".join(f"{code} x{n}" for code, n in sorted(codes[a].items())),
            ACTIONS[a].summary,
        )
        for a in sorted(counts, key=lambda a: (ACTIONS[a].phase, a))
    ]
    run_id = (
        header.run_id if literal_problem(header.run_id) is None else comment_text(header.run_id)
    )
    try:
        tenant_id = valid_guid(header.tenant_id, "tenant id") if header.tenant_id else ""
    except UnsafeValue:
        tenant_id = ""  # the script then asks for -TenantId instead of trusting the value
    template = ps_environment().get_template(TEMPLATE)
    return template.render(
        header=header,
        run_id=run_id,
        plan=plan,
        fixes=fixes,
        manual=plan.ordered_manual(),
        cloud_calls=plan.ordered_calls(CLOUD),
        onprem_calls=plan.ordered_calls(ON_PREMISES),
        action_specs=[spec for spec in ACTIONS.values() if spec.action in counts],
        scopes=[PERMISSIONS[name] for name in plan.scopes],
        undo_scopes=plan.undo_scopes,
        roles=plan.roles,
        uses_roles=plan.uses_roles,
        tenant_id=tenant_id,
        modules=plan.modules,
        no_action=sorted(plan.no_action.items()),
    )


def tenant_label(tenant: Tenant) -> str:
    parts = [p for p in (tenant.initial_domain, tenant.tenant_id) if p]
    return " / ".join(parts) if parts else "unknown tenant"


def remediation_script(
    findings: pl.DataFrame,
    settings: Settings,
    *,
    tenant: Tenant,
    run_id: str,
    taken_at: str | None,
    generated: str,
    plan: Plan | None = None,
) -> str:
    if plan is None:
        plan = plan_findings(findings, options_from_settings(settings, tenant))
    header = ScriptHeader(
        run_id=run_id,
        tenant=tenant_label(tenant),
        taken_at=taken_at or "unknown",
        generated=generated,
        tenant_id=tenant.tenant_id,
    )
    return render_plan(plan, header)


def write_remediation(
    run_dir: Path,
    findings: pl.DataFrame,
    settings: Settings,
    *,
    tenant: Tenant,
    run_id: str,
    taken_at: str | None,
    generated: str,
    plan: Plan | None = None,
) -> Path:
    """Write <run>/remediation.ps1 atomically, as pure ASCII with CRLF: Windows PowerShell 5.1
    reads a file without BOM in the ANSI code page (cp1252), where UTF-8 bytes can turn into
    quote characters; ASCII reads the same everywhere (non-ASCII values are [char] casts)."""
    text = remediation_script(
        findings,
        settings,
        tenant=tenant,
        run_id=run_id,
        taken_at=taken_at,
        generated=generated,
        plan=plan,
    )
    path = run_dir / SCRIPT_NAME
    write_file_atomically(path, lambda p: p.write_text(text, encoding="ascii", newline="\r\n"))
    return path
