"""Write one benchmark's results into its own section of docs/benchmarks.md.

Each benchmark owns the block between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; re-running a benchmark replaces only its block, so
benchmarks run at different times on different machines coexist, each block
stating the machine it ran on. The contents at the top, every section under
its kind (``GROUPS``), are written again with each section.
"""

from __future__ import annotations

import datetime
import fnmatch
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


#: the kinds of section the contents list, each with the section names (shell patterns) it holds; a section
#: that matches none is listed under "Other"
GROUPS = (
    ("Speed and memory at the size of real screens",
     ("scatter", "open", "open_first_site", "scale", "scale_embed", "browse", "gan_throughput", "train_loop",
      "embed_threads", "checkpoint", "analysis")),
    ("GAN-DL's default: the suite, held-out screens, decoys, seeds and budgets",
     ("split_budget*", "joined_runs", "heldout*", "decoys*", "reference", "seeds", "untrained_draws*", "budget",
      "divergence*", "recover")),
    ("Training choices tried on the suite",
     ("suite*", "info_pair", "mismatch", "wide_generator", "d_average", "gan_ablation")),
    ("Read-out and analysis choices tried on the suite",
     ("orientations*", "deep_taps", "two_scales", "profile", "cell_fraction", "feature_select", "robust_scale",
      "svm_c", "control_pick", "ranking", "e2_per_cell_type", "align")),
    ("Other methods, sample quality and the first screens",
     ("compare*", "zero_shot", "dino_backbone", "gan_quality", "gan_projection", "nn1_check")),
)
CONTENTS = re.compile(r"<!-- contents -->.*?<!-- /contents -->", re.S)


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading (no section title of benchmarks.md repeats another)."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def contents(text: str) -> str:
    """The contents block of a benchmarks.md ``text``: every section under its kind, in the file's order."""
    sections = re.findall(r"<!-- bench:(\S+) -->\n## (.*)\n", text)
    listed: dict[str, list[str]] = {}
    for name, title in sections:
        kind = next((k for k, patterns in GROUPS if any(fnmatch.fnmatchcase(name, p) for p in patterns)), "Other")
        listed.setdefault(kind, []).append(f"- [{title}](#{github_anchor(title)})")
    kinds = [k for k, _ in GROUPS if k in listed] + (["Other"] if "Other" in listed else [])
    return "<!-- contents -->\n" + "\n\n".join(f"**{k}**\n\n" + "\n".join(listed[k]) for k in kinds) \
        + "\n<!-- /contents -->"


def with_contents(text: str) -> str:
    """A benchmarks.md ``text`` with its contents block written again (the first time, after the introduction,
    before the first section)."""
    if CONTENTS.search(text):
        return CONTENTS.sub(lambda _: contents(text), text)
    first = text.index("<!-- bench:")
    return text[:first] + contents(text) + "\n\n" + text[first:]


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
    REPORT.write_text(with_contents(text))
    return REPORT


def publish(name: str, title: str, body: str, write: bool = True) -> None:
    """Print a benchmark's results and, unless ``write`` is false (``--no-report``), put them in their
    section ``name`` of docs/benchmarks.md."""
    print(body)
    if write:
        write_section(name, title, body)
