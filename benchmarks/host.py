"""The machine a benchmark ran on, as RESULTS.md names it (CPU model, cores, RAM), this
process's memory as Linux counts it, for peak-memory figures, and RESULTS.md itself (`--write`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def hardware() -> str:
    """'AMD EPYC ..., 2 cores, 23.5 GB RAM' (lscpu's model name, else /proc/cpuinfo's)."""
    cpu = "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln), cpu
        )
    except (OSError, subprocess.CalledProcessError):
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as info:
                cpu = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), cpu)
        except OSError:
            pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{cpu}, {os.cpu_count()} cores, {ram:.1f} GB RAM"


def status_kb(field: str) -> int:
    """A kB figure of /proc/self/status: VmRSS (resident now), VmHWM (the peak so far)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def append_to_results(text: str) -> None:
    """A benchmark's tables added at the end of benchmarks/RESULTS.md (`--write`)."""
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(text)
