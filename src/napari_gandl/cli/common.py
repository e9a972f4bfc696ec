"""What the ``gandl`` subcommands share: progress bars (tqdm, on standard error), CPU threads."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress_bar(total: float, desc: str = "", unit: str = "it", quiet: bool = False) -> tqdm:
    """A bar to stderr: redrawn twice a second in a terminal, every 10 s in a log file."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=quiet, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 10.0, leave=True)


def advance(bar: tqdm, n: float, postfix: str | None = None) -> None:
    """Move ``bar`` to ``n`` (not by ``n``), with an optional status text after it."""
    if postfix is not None:
        bar.set_postfix_str(postfix, refresh=False)
    bar.update(n - bar.n)


class ReportedProgress:
    """A progress bar made at the first report, when its total is known, so a command that fails before
    any progress prints its error alone: ``with ReportedProgress(...) as report: job(progress=report)``
    where the job calls ``report(done, total[, text])``. Leaving the block closes the bar (ending its
    line) before any error message is printed."""

    def __init__(self, desc: str, unit: str, quiet: bool = False):
        self.desc, self.unit, self.quiet, self.bar = desc, unit, quiet, None

    def __call__(self, done: float, total: float, postfix: str | None = None) -> None:
        if self.bar is None:
            self.bar = progress_bar(total, desc=self.desc, unit=self.unit, quiet=self.quiet)
        self.bar.total = total
        advance(self.bar, done, postfix)

    def __enter__(self) -> "ReportedProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def set_threads(threads: int | None) -> None:
    """``--threads``: torch's CPU threads (None: torch's own choice); a one-line error below 1."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def thread_governor(threads: int | None, device: str | None):
    """Without ``--threads``, CPU training and embedding keep torch's threads to the cores other
    processes leave free (:class:`~napari_gandl.torch_utils.threads.ThreadGovernor`, updated
    between steps or batches by the caller). None when the threads were chosen already: by ``--threads``, by
    ``OMP_NUM_THREADS``, or by torchrun, which gives each of its processes one thread."""
    from napari_gandl.torch_utils.device import resolve_device
    from napari_gandl.torch_utils.threads import ThreadGovernor

    chosen = threads is not None or "OMP_NUM_THREADS" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1
    return None if chosen or resolve_device(device).type != "cpu" else ThreadGovernor()


def governed_threads(governor) -> str:
    """Let ``governor`` (from :func:`thread_governor`) look at the machine again; its threads, as
    the progress line says them."""
    from napari_gandl.torch_utils.threads import threads_text

    governor.update()
    return threads_text(governor.threads)
