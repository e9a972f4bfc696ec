"""Writing output files so that a crash never leaves half a file behind, a full disk is named,
and two processes never write the same output at once."""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout


def first_process() -> bool:
    """Whether this process writes and speaks for its command: always, unless torchrun started it as
    a rank other than 0."""
    return int(os.environ.get("RANK", "0")) == 0


class OutputBusy(RuntimeError):
    """Another process holds the lock on an output; the message names it."""


def disk_full(exc: BaseException) -> OSError | None:
    """The "no space left on device" error (errno 28) behind ``exc``, if there is one: torch
    reports it as a RuntimeError whose context is the OSError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def atomic_path(path, durable: bool = False) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; it replaces ``path`` when the block ends
    without an error, and is removed when it raises. ``durable`` also fsyncs the file and
    its folder, so the new content survives a power cut (checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        if disk_full(exc) is None:
            raise
        raise OSError(errno.ENOSPC, "disk full", str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def write_text(path, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def check_output(path, folder: bool) -> Path:
    """``path`` as an output file (``folder=False``) or folder: a one-line ValueError, before any
    work starts, when it already exists as the other kind."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; the output here is a folder, give a folder path")
    if not folder and path.is_dir():
        raise ValueError(f"{path} is a folder; the output here is a file, give a file path")
    return path


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(record: Path) -> str:
    """Who holds a lock, from the record its holder wrote beside it."""
    try:
        h = json.loads(record.read_text())
        pid, host = int(h["pid"]), str(h["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
    if host == socket.gethostname() and not _alive(pid):
        return "another process"  # a killed holder's record, read before the new holder replaced it
    return f"process {pid} on {host} ({h.get('command', '?')}), since {h.get('since', '?')}"


@contextmanager
def output_lock(path, folder: bool = False) -> Iterator[Path]:
    """Hold the lock on output ``path`` (a file, or a ``folder``) while the block runs.

    The lock is an OS lock (``filelock``) on ``.NAME.lock`` beside an output file, or on
    ``.gandl.lock`` inside an output folder, so the operating system releases it when its holder
    dies, even by ``kill -9``: a rerun that resumes is never blocked by a dead process. The
    ``.holder`` record (JSON) beside the lock names the holder (pid, host, command, start time) for the
    :class:`OutputBusy` refusal a second writer gets; it is removed on release and replaced by the
    next holder after a crash. The empty lock file stays (removing it would let two processes
    lock two different files of the same name).
    """
    path = check_output(path, folder)
    if folder:
        path.mkdir(parents=True, exist_ok=True)
        lock_path = path / ".gandl.lock"
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(f".{path.name}.lock")
    record = lock_path.with_name(lock_path.name + ".holder")
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusy(f"{path} is being written by {_holder(record)}; wait for it to end or "
                         f"choose another output") from None
    try:
        write_text(record, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "command": shlex.join(sys.argv) or "python",
                                       "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        yield path
    finally:
        record.unlink(missing_ok=True)
        lock.release()
