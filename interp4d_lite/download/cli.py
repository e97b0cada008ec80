"""``interp4d-lite download acdc|lung4d``: the downloaders as subcommands (their flags come
from each downloader's ``add_arguments``; nothing heavier than numpy is imported to parse)."""

from __future__ import annotations

__all__ = ["add_commands"]


def add_commands(subparsers) -> None:
    from . import _common as C
    from . import acdc, lung4d

    p = subparsers.add_parser(
        "download",
        help="download ACDC or TCIA 4D-Lung into the layouts the loaders read",
        description="Download a real data set, verify it and arrange it in the layout the loaders and the "
        "06_real_data notebook read. Resumable; re-running is safe. Needs the [download] extra "
        "(pip install 'interp4d_lite[download]').",
    )
    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, module, summary in (
        ("acdc", acdc, "ACDC cardiac cine MRI (~7 GB, NIfTI)"),
        ("lung4d", lung4d, "TCIA 4D-Lung 4D-CT (~170 GB of DICOM, converted to NIfTI)"),
    ):
        q = sub.add_parser(name, help=summary, description=module.DESCRIPTION, prog=module.PROG)
        module.add_arguments(q)
        q.set_defaults(func=lambda args, module=module: C.run_cli(lambda _: module.run(args), None, module.PROG))
