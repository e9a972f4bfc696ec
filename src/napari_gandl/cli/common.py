"""What the ``gandl`` subcommands share: progress bars (tqdm, on standard error), CPU threads, stopping
on a signal."""

from __future__ import annotations

import os
import signal
import sys
import threading

from tqdm.auto import tqdm

from napari_gandl.files import first_process

#: every subcommand, in the order ``gandl --help`` lists them: the module (``napari_gandl.cli.NAME``) that adds
#: it, and its one line in that list
COMMANDS = {
    "demo": ("demo", "run the pipeline on the bundled synthetic screen (or on PLATE)"),
    "synthetic": ("synthetic", "write a synthetic RxRx19a-layout screen (demo, test or a benchmark screen)"),
    "train": ("train", "train a GAN-DL model (StyleGAN2), or another trainable embedding method, on a plate"),
    "embed": ("embed", "embed every site of a plate with a registered method (GAN-DL, handcrafted, ...)"),
    "analyse": ("analyse", "control tasks, E2/C2 spaces, dose-response and a report for an embedding table"),
    "align": ("analyse", "remove plate (or experiment) effects from any embedding table, adversarially"),
    "compare": ("compare", "train and embed several methods with the same budget and compare them (Table 1)"),
    "view": ("view", "open a demo folder (or a plate) in napari with its embedding and docks"),
}


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


#: what stops a command: Ctrl-C, and the SIGTERM a batch scheduler (SLURM, a job's time limit) sends first
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A command stopped by ``signum`` before it finished (exit status 128 + ``signum``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _OnStopSignals:
    """Inside a ``with`` block, ``self._on_signal(signum, frame)`` handles :data:`STOP_SIGNALS`; the
    handlers before are put back after it. Outside the main thread it installs nothing."""

    def _on_signal(self, signum, _frame) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class StopRequest(_OnStopSignals):
    """``with StopRequest("gandl train", "stopping ...") as stop:``: while inside, Ctrl-C or SIGTERM only
    sets ``stop`` (``stop()`` turns true), so that long work stops at its next step and keeps what it did;
    a second Ctrl-C interrupts at once (:class:`Interrupted`), except in a process of a torchrun, which
    passes the terminal's Ctrl-C on to its processes a second time (and one process leaving alone would
    hang the others)."""

    def __init__(self, command: str, doing: str):
        self.command, self.doing = command, doing
        self.signum: int | None = None
        self.second_stops_at_once = int(os.environ.get("WORLD_SIZE", "1")) == 1

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name

    def _on_signal(self, signum, _frame) -> None:
        if self.signum is not None:  # asked already
            if signum == signal.SIGINT and self.second_stops_at_once:
                raise Interrupted(signum)
            return
        self.signum = signum
        again = " (Ctrl-C again to stop at once, losing it)" if self.second_stops_at_once else ""
        if first_process():  # said once for all of a torchrun's processes
            tqdm.write(f"{self.command}: {self.name}: {self.doing}{again}", file=sys.stderr)


class InterruptOnSignal(_OnStopSignals):
    """``with InterruptOnSignal():``: SIGTERM interrupts the command as Ctrl-C does (:class:`Interrupted`),
    so that its clean-up runs (output locks released, unfinished files removed) instead of the process
    dying where it stands."""

    def _on_signal(self, signum, _frame) -> None:
        raise Interrupted(signum)
