"""Finding rules, one module per family; each module exposes ``RULES``.

The registry is built lazily so importing a single rule module (or ``rules.base``) does not pull
in every family.
"""

from __future__ import annotations

import importlib

from audit.rules.base import Rule, RuleContext

__all__ = ["FAMILY_MODULES", "Rule", "RuleContext", "all_rules", "rule_by_code"]

FAMILY_MODULES = (
    "audit.rules.anchor",
    "audit.rules.consistency",
    "audit.rules.matching",
    "audit.rules.hardening",
    "audit.rules.duplicates",
    "audit.rules.drift",
    "audit.rules.tenant",
    "audit.rules.idfix",
)


def all_rules() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for module_name in FAMILY_MODULES:
        module = importlib.import_module(module_name)
        rules.extend(module.RULES)
    codes = [r.meta.code for r in rules]
    duplicates = {c for c in codes if codes.count(c) > 1}
    if duplicates:
        raise RuntimeError(f"finding codes defined twice: {sorted(duplicates)}")
    return tuple(rules)


def rule_by_code(code: str) -> Rule | None:
    return next((r for r in all_rules() if r.meta.code == code), None)
