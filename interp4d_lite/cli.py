"""The ``interp4d-lite`` command line.

Each subcommand lives next to the code it drives and registers itself here:
``phantom`` in :mod:`interp4d_lite.data.cli`, the training/evaluation/interpolation
commands in :mod:`interp4d_lite.train.cli`.
"""
from __future__ import annotations

import argparse
import sys

from .errors import CLIError, Interp4DError

__all__ = ["main", "build_parser", "CLIError"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interp4d-lite",
        description="4D medical image interpolation with a temporal-modulated student "
        "distilled from a privileged teacher (phantoms, training, evaluation, interpolation).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from .data.cli import add_commands as add_data_commands

    add_data_commands(sub)
    try:
        from .train.cli import add_commands as add_train_commands
    except ImportError:  # training commands not built yet
        add_train_commands = None
    if add_train_commands is not None:
        add_train_commands(sub)
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
