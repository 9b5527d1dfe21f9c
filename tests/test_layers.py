"""The house's shape, checked: every module imports only from its own layer or lower ones, so
a live source, a new output or the service is one new room with one door."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import audit
from audit.errors import (
    AnchorError,
    ConfigError,
    InputError,
    LookupFailed,
    RunDirError,
    SyncauditError,
    UsageError,
)

PACKAGE = Path(audit.__file__).parent

# Lower first. A module may import from its own layer and any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("audit.errors", "audit.tlds", "audit.templates"),
    ("audit.anchor", "audit.powershell"),
    ("audit.model",),
    ("audit.config", "audit.config_schema", "audit.config_lines"),
    ("audit.sources", "audit.store"),
    ("audit.rules", "audit.classify"),
    ("audit.remediation", "audit.hardmatch"),
    (
        "audit.forecast",
        "audit.forecast_blockers",
        "audit.forecast_people",
        "audit.forecast_rows",
        "audit.forecast_verdict",
    ),
    ("audit.outputs", "audit.history", "audit.waivers", "audit.notify"),
    ("audit.demo",),
    ("audit.pipeline",),
    ("audit.service", "audit.forecast_run"),
    ("audit.schedule",),
    ("audit.cli", "audit.cli_forecast"),
)


def layer_of(module: str) -> int:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        # every import, also inside functions; a relative one would hide its layer
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: relative import"
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "audit":
                found |= {f"audit.{alias.name}" for alias in node.names}
            elif node.module.startswith("audit."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("audit.")}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_from_a_higher_layer(path: Path) -> None:
    module = module_name(path)
    if module == "audit":
        return
    mine = layer_of(module)
    upward = sorted(m for m in imported(path) if layer_of(m) > mine)
    assert not upward, f"{module} (layer {mine}) imports from higher layers: {upward}"


def test_no_module_over_600_lines() -> None:
    """Big modules are split along their seams (data tables could be the exception; none is
    needed yet)."""
    long = {
        module_name(p): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long


@pytest.mark.parametrize(
    "error",
    [
        UsageError("bad flag"),
        ConfigError("c.toml:3: [run] fail_on must be a severity"),
        RunDirError("run: already exists"),
        AnchorError("not an anchor"),
        LookupFailed("no AD user 'x'"),
        InputError("ad.ldf", "truncated base64 value", line=812),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_kind_is_one_line_and_exit_2(
    error: SyncauditError, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI knows the base, not the names: a new kind needs no CLI change."""
    from audit import cli, pipeline

    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(pipeline, "analyze", fail)
    assert cli.main(["analyze", "run"]) == 2
    err = capsys.readouterr().err
    assert err == f"syncaudit: error: {error}\n"
    assert "bug" not in err


def test_an_origin_names_a_file_line_or_a_live_page() -> None:
    from audit.errors import Origin

    assert str(InputError("ad.ldf", "bad", line=812)) == "ad.ldf:812: bad"
    assert str(InputError(Origin("ldaps://dc01", page=4), "bad")) == "ldaps://dc01 page 4: bad"
    assert str(InputError(Origin("GET /users", page=7), "bad")) == "GET /users page 7: bad"
    assert str(InputError("users.json", "bad", obj="u1")) == "users.json: object u1: bad"


def test_architecture_md_names_every_module_and_only_real_ones() -> None:
    """docs/ARCHITECTURE.md describes the tree as built: every module is named (by path, by its
    package's row, or by file name in its reader's row) and every path it names exists."""
    import re

    repo = PACKAGE.parent
    text = (repo / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:audit|benchmarks)/[\w/.]+)`", text))
    missing_paths = sorted(p for p in named if not (repo / p.rstrip("/")).exists())
    assert not missing_paths
    packages = {p for p in named if p.endswith("/")}
    unnamed = [
        rel
        for path in MODULES
        if path.name != "__init__.py"
        and (rel := str(path.relative_to(repo))) not in named
        and not any(rel.startswith(package) for package in packages - {"audit/sources/"})
        and f"`{path.name}`" not in text
    ]
    assert not unnamed
