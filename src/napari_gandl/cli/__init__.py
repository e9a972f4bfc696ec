"""The ``gandl`` command: one module per subcommand, each adding itself with ``register``."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings
from importlib.metadata import version

from tqdm import tqdm

from napari_gandl.cli.common import COMMANDS, InterruptOnSignal
from napari_gandl.files import OutputBusy, disk_full

#: what an interrupted command kept, said after it (the others are quick, or write nothing until they end)
KEPT_WHEN_INTERRUPTED = {
    "train": "what was trained since the last checkpoint is lost; add --resume to the same command to go on "
             "from that checkpoint",
    "embed": "the finished batches are kept; the same command goes on from them",
    "compare": "what was finished is kept; the same command goes on from it",
    "demo": "what was finished is kept; the same command goes on from it",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``gandl`` parser: every command's options, or with ``argv`` only those of the command it names
    (the others listed by their one line). A command's module imports what it runs on (torch, scikit-learn,
    ...: seconds), so ``gandl --help`` and ``gandl view`` do not wait for the other commands' imports."""
    parser = argparse.ArgumentParser(
        prog="gandl", description="GAN-DL: annotation-free embeddings of fluorescence microscopy screens"
    )
    parser.add_argument("--version", action="version", version=f"napari-gandl {version('napari-gandl')}")
    sub = parser.add_subparsers(dest="command", required=True)
    named = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    wanted = COMMANDS[named][0] if named in COMMANDS else None  # the module adding the command named
    for name, (module, summary) in COMMANDS.items():
        if name in sub.choices:  # added with the other command of its module
            continue
        if argv is None or module == wanted:
            importlib.import_module(f"napari_gandl.cli.{module}").register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    said: set[str] = set()

    def say(message, *_args, **_kw):  # each warning once (the runs of one training may warn alike)
        line = f"gandl {args.command}: warning: {message}"
        if line not in said:
            said.add(line)
            tqdm.write(line, file=sys.stderr)

    with warnings.catch_warnings():  # a warning is one line, as an error is, and not glued to a progress bar
        warnings.showwarning = say
        if args.command == "view":  # napari's event loop: SIGTERM ends it as it always did
            return _run(args)
        with InterruptOnSignal():
            return _run(args)


def _run(args) -> int:
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError, OutputBusy) as exc:  # bad input: a clear message
        print(f"gandl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (InterruptOnSignal): one line, not a traceback
        return _interrupted(args.command, exc)
    except Exception as exc:
        interrupt = exc.__context__
        while interrupt is not None and not isinstance(interrupt, KeyboardInterrupt):
            interrupt = interrupt.__context__
        if interrupt is not None:  # a clean-up that failed under the interrupt (torch.save's writer does)
            return _interrupted(args.command, interrupt)
        full = disk_full(exc)
        if full is None:
            raise
        path = full.filename or getattr(args, "out", None) or getattr(args, "dest", "the output")
        print(f"gandl {args.command}: error: disk full while writing {path}", file=sys.stderr)
        return 2


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    """Say in one line that ``command`` was interrupted and what it kept; its exit status (128 + signal)."""
    signum = getattr(exc, "signum", signal.SIGINT)
    kept = KEPT_WHEN_INTERRUPTED.get(command)
    print(f"gandl {command}: interrupted ({signal.Signals(signum).name})" + (f": {kept}" if kept else ""),
          file=sys.stderr)
    return 128 + signum
