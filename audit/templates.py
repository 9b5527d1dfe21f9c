"""Where the shipped templates live: one lookup for the reports and the scripts."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def templates_dir() -> Path:
    """report_templates/: inside the installed package (wheel), else the source tree's."""
    packaged = resources.files("audit").joinpath("report_templates")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "report_templates"
