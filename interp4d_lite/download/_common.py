"""Pieces shared by the two command-line tools: CLI error handling, HTTP flags,
an exclusive lock on the destination, and small helpers."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import Interp4DError
from .errors import DownloadError
from .http import HTTPSettings, is_disk_full


def add_http_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network")
    g.add_argument("--retries", type=int, default=4, help="retries after a 5xx answer or a cut connection (default 4)")
    g.add_argument(
        "--backoff", type=float, default=2.0, help="first retry delay in seconds, doubled each retry (default 2)"
    )
    g.add_argument("--timeout", type=float, default=120.0, help="read timeout in seconds (default 120)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def http_settings(args) -> HTTPSettings:
    return HTTPSettings(
        retries=max(0, args.retries),
        backoff=max(0.0, args.backoff),
        read_timeout=args.timeout,
        connect_timeout=min(30.0, args.timeout),
        progress=not args.no_progress,
    )


def command_main(module, argv: Sequence[str] | None, prog: str) -> int:
    """A downloader's ``main``: parse ``argv`` with ``module.add_arguments`` (help from
    ``module.DESCRIPTION``), ``module.run`` it, print any expected error as one line."""

    def parse_and_run(args: Sequence[str] | None) -> int:
        p = argparse.ArgumentParser(prog=prog, description=module.DESCRIPTION)
        module.add_arguments(p)
        return module.run(p.parse_args(args))

    return run_cli(parse_and_run, argv, prog)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run ``main``; print any expected error as one line (exit 2)."""
    try:
        return main(argv)
    except Interp4DError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished steps are kept, re-run the same command to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        if is_disk_full(exc):
            print(f"{prog}: error: disk full ({exc}); free some space and re-run to resume", file=sys.stderr)
        else:
            print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def dest_lock(lock_path: Path):
    """An exclusive lock on the destination (:class:`filelock.FileLock`, an OS-level lock:
    a crashed run never leaves it held). Two runs into one destination would corrupt each
    other, so a second run fails at once with a clear message instead of waiting."""
    from filelock import FileLock, Timeout

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DownloadError(
            f"{lock_path}: another download is writing to this destination; wait for it to finish or stop it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def say(msg: str = "") -> None:
    print(msg, flush=True)
