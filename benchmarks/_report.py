"""Write one benchmark's results into its own section of docs/benchmarks.md.

Each benchmark owns the block between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; re-running a benchmark replaces only its block, so
benchmarks run at different times on different machines coexist, each block
stating the machine it ran on.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Measured by the scripts in `benchmarks/` (run on demand, never in CI).\n"
    "Each section names the machine it ran on; re-run a script to refresh its section.\n"
)


def machine_description() -> str:
    """A one-line description of this machine: CPU model, cores, memory, GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def write_section(name: str, title: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md."""
    stamp = datetime.date.today().isoformat()
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"*Machine:* {machine_description()}  \n*Date:* {stamp}\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = REPORT.read_text() if REPORT.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    return REPORT


def publish(name: str, title: str, body: str, write: bool = True) -> None:
    """Print a benchmark's results and, unless ``write`` is false (``--no-report``), put them in their
    section ``name`` of docs/benchmarks.md."""
    print(body)
    if write:
        write_section(name, title, body)
