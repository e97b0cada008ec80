"""The ``interp4d-lite`` command line.

Each subcommand lives next to the code it drives and registers itself here:
``phantom`` and ``convert`` in :mod:`interp4d_lite.data.cli`, the training and evaluation
commands in :mod:`interp4d_lite.train.cli`, ``interpolate`` in :mod:`interp4d_lite.interpolate`,
``adapt`` in :mod:`interp4d_lite.adapt`, ``download`` in
:mod:`interp4d_lite.download.cli`, ``notebooks`` and ``tutorial`` in :mod:`interp4d_lite.tutorial.cli`.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import CLIError, Interp4DError

__all__ = ["main", "build_parser", "CLIError"]


def build_parser() -> argparse.ArgumentParser:
    """The ``interp4d-lite`` parser. Building it imports no torch: each command imports
    what it needs when it runs, so ``--help`` is quick."""
    parser = argparse.ArgumentParser(
        prog="interp4d-lite",
        description="4D medical image interpolation with a temporal-modulated student "
        "distilled from a privileged teacher (phantoms, training, evaluation, interpolation, "
        "data downloads, the tutorial notebooks).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from .adapt import add_commands as add_adapt_commands
    from .data.cli import add_commands as add_data_commands
    from .download.cli import add_commands as add_download_commands
    from .interpolate import add_commands as add_interpolate_commands
    from .train.cli import add_commands as add_train_commands
    from .tutorial.cli import add_commands as add_notebook_commands

    add_data_commands(sub)
    add_train_commands(sub)
    add_interpolate_commands(sub)
    add_adapt_commands(sub)
    add_download_commands(sub)
    add_notebook_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except Interp4DError as exc:  # CLIError, DataError, CheckpointError: one line, no traceback
        print(f"interp4d-lite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
