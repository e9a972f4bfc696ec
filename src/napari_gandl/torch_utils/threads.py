"""Torch's CPU threads, kept to the cores that other processes leave free.

torch starts as many threads as there are cores. Alone on a 2-core machine that is the
fastest, but beside one other busy process each step waits for a thread that lost its core:
GAN-DL training fell from 41 to 11.5 img/s, where one thread kept 28.4 (bench_train_loop).
:class:`ThreadGovernor` measures, every few seconds, how many cores the rest of the machine
keeps busy and sets torch's threads to the cores left: all of them alone, fewer when something
else runs, all again when it stops. torch has no such policy, hence this module.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch

# (CPU seconds the whole machine spent busy, CPU seconds this process spent, wall seconds); None
# where the machine's figure cannot be read (only Linux's /proc/stat is read).
Reading = tuple[float, float, float] | None


def threads_text(threads: int) -> str:
    """How a progress line says a thread count: "1 thread", "3 threads"."""
    return f"{threads} thread{'s' * (threads > 1)}"


def machine_cores() -> set[int]:
    """The cores this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def read_cpu_times() -> Reading:
    """Busy CPU seconds of the cores this process may run on (from /proc/stat: on a shared node
    other jobs' cores do not count), of this process, and the wall clock; None where /proc/stat
    cannot be read."""
    cores = machine_cores()
    busy = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if not name.startswith("cpu"):
                    break
                if name[3:].isdigit() and int(name[3:]) in cores:
                    fields = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                    busy += sum(fields) - fields[3] - fields[4]
    except (OSError, ValueError, IndexError):
        return None
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.monotonic()


class ThreadGovernor:
    """Sets torch's threads to the cores other processes leave free: at least one, at most
    ``most`` (torch's own choice by default, which it makes alone on the machine).

    Call :meth:`update` between training steps: every ``every_s`` seconds it compares the
    machine's busy CPU time with this process's own, and a core counts as taken when other
    processes kept it more than half busy. Returns the new thread count when it changed.
    """

    def __init__(self, most: int | None = None, every_s: float = 10.0, cores: int | None = None,
                 read: Callable[[], Reading] = read_cpu_times):
        self.threads = torch.get_num_threads()
        self.most = max(1, most or self.threads)
        self.cores = cores or len(machine_cores())
        self.every_s = every_s
        self._read = read
        self._last = read()

    def update(self) -> int | None:
        if self._last is None:
            return None
        now = self._read()
        if now is None or now[2] - self._last[2] < self.every_s:
            return None
        busy, own, wall = (b - a for a, b in zip(self._last, now))
        self._last = now
        others = max(0.0, (busy - own) / wall)  # cores' worth of other processes' work
        threads = max(1, min(self.most, self.cores - int(others + 0.5)))
        if threads == self.threads:
            return None
        torch.set_num_threads(threads)
        self.threads = threads
        return threads
