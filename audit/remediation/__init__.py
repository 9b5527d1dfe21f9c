"""remediation.ps1: the findings of a run as a reviewable PowerShell script.

The script is a *view* of the findings, like the reports: one call per remediable finding (its
fingerprint and code in a comment above it), one function per action, and a commented-out,
clearly marked manual step for every finding that has no safe automatic fix or whose values fail
validation. The PowerShell itself (checks, changes, log, undo) lives in
report_templates/remediation/: static PowerShell for the runtime and -Undo, one small template per
action, and main.ps1.j2 that puts them together; this package decides which call each finding gets
and with which values.

Injection-proofing: a value from the directory enters the script only through the template's
``ps_literal`` filter (a verbatim literal with every quote character doubled, see
audit/powershell.py), or as comment text through ``ps_comment``. The Jinja environment's
``finalize`` refuses any other value, so a template edit that prints a raw value fails loudly.
Each action's parameters are declared once, in ACTIONS (ActionSpec.params): its function's
param(...) list in the script is written from the declaration, and every call, the plan's and
hardmatch's, passes each value through the parameter's check. Identifiers the script writes
(anchors, object ids, UPNs, AD attribute names) are checked strictly; a value that fails becomes
a manual step, never code.

The modules, each importing only the ones above it:

* ``permissions``: the delegated Graph permissions, Entra roles and documentation pages the
  actions rest on (declarations only).
* ``actions``: the action catalogue: each action's function, its parameters with their checks,
  what it needs; ``Call`` (one checked call of a function), ``least_scopes``, the docs tables.
* ``builders``: one builder per action: a finding row -> the call of that action's function.
* ``plan``: findings -> ``Plan`` of calls and manual steps, and the ``PlanSummary`` the reports
  count.
* ``script``: a plan -> remediation.ps1 through the PowerShell Jinja environment.
"""
