"""torch's CPU threads follow the cores other processes leave free."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from napari_gandl.cli.common import thread_governor
from napari_gandl.torch_utils.threads import ThreadGovernor, read_cpu_times


class Machine:
    """Readings of a machine where other processes keep ``others`` cores busy and this
    process ``own`` cores, advancing ``step_s`` seconds per reading."""

    def __init__(self, others: float, own: float, step_s: float = 5.0):
        self.others, self.own, self.step_s = others, own, step_s
        self.busy = self.mine = self.wall = 0.0

    def __call__(self):
        self.wall += self.step_s
        self.mine += self.own * self.step_s
        self.busy += (self.others + self.own) * self.step_s
        return self.busy, self.mine, self.wall


@pytest.mark.parametrize("others, expected", [(0.0, 4), (0.4, 4), (0.7, 3), (1.0, 3), (2.6, 1), (7.5, 1)])
def test_threads_are_the_cores_others_leave(torch_threads, others, expected):
    torch.set_num_threads(4)
    machine = Machine(others=others, own=1.5)
    governor = ThreadGovernor(cores=4, every_s=10, read=machine)
    assert governor.update() is None  # 5 s after the first reading: too soon to judge
    assert governor.update() == (expected if expected != 4 else None)
    assert governor.threads == torch.get_num_threads() == expected


def test_threads_come_back_when_the_other_process_stops(torch_threads):
    torch.set_num_threads(2)
    machine = Machine(others=1.0, own=1.0, step_s=10)
    governor = ThreadGovernor(cores=2, read=machine)
    assert governor.update() == 1 and torch.get_num_threads() == 1
    machine.others = 0.05
    assert governor.update() == 2 and torch.get_num_threads() == 2
    assert governor.update() is None  # unchanged


def test_never_more_than_most_nor_fewer_than_one(torch_threads):
    torch.set_num_threads(2)
    governor = ThreadGovernor(cores=8, read=Machine(others=0.0, own=2.0, step_s=10))
    assert governor.most == 2 and governor.update() is None and torch.get_num_threads() == 2
    governor = ThreadGovernor(most=3, cores=2, read=Machine(others=0.0, own=2.0, step_s=10))
    assert governor.update() is None and torch.get_num_threads() == 2
    governor = ThreadGovernor(cores=2, read=Machine(others=5.0, own=0.5, step_s=10))
    assert governor.update() == 1


def test_without_a_machine_reading_threads_stay(torch_threads):
    torch.set_num_threads(2)
    governor = ThreadGovernor(cores=2, every_s=0, read=lambda: None)
    assert governor.update() is None and torch.get_num_threads() == 2


def test_a_busy_process_beside_takes_a_core(torch_threads):
    """The real /proc/stat: alone a 2-core share keeps both threads; beside a process burning
    a core for a few seconds it gives that core up (skipped where the machine cannot be read)."""
    if read_cpu_times() is None:
        pytest.skip("no /proc/stat")
    torch.set_num_threads(2)
    governor = ThreadGovernor(cores=2, every_s=1.5)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.6)
        assert governor.update() == 1
    finally:
        burner.kill()
        burner.wait()


def test_cli_governs_only_when_nothing_chose_the_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert isinstance(thread_governor(None, "cpu"), ThreadGovernor)
    assert thread_governor(1, "cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert thread_governor(None, "cpu") is None
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_governor(None, "cpu") is None
