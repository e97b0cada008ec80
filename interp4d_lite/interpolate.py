"""Interpolate new frames between two volumes with a trained student, on the
input's own grid.

What happens to an input of any size (documented choice):

1. the inputs are normalised as every route normalises a scan
   (:func:`~interp4d_lite.data.preprocess.normalize_scan`): CT-like intensities clipped to the
   HU window, then each volume min-max normalised to [0, 1] on its own (as in training);
2. the student runs on the input's **own grid**: it pads internally (replicate) to its
   pyramid's multiple and crops its outputs back, so nothing is resampled, and the
   output has exactly the input's shape, voxel size and affine;
3. intensities are mapped back to the input's range (after the clip, for CT): frame t gets
   ``lo_t + (hi_t - lo_t) * I_t`` with ``lo_t = (1 - t) lo_0 + t lo_1`` (same for hi).

The encoder runs once per pair; every timestamp only costs the decoder.

The ``interpolate`` command (:func:`add_commands`) lives here, beside the code it drives; the
module imports torch only when it runs, so the command line parses without it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data.preprocess import guess_data_kind
from .errors import CLIError, DataError
from .io_utils import check_frames, check_output_path

if TYPE_CHECKING:
    import torch

__all__ = [
    "interpolate_volumes",
    "check_frames",
    "read_pair",
    "write_frames",
    "interpolate_files",
    "parse_times",
    "add_commands",
]


def parse_times(times: Sequence[float] | None = None, n: int | None = None) -> list[float]:
    """Timestamps from an explicit list, or ``n`` evenly spaced strictly inside (0, 1)."""
    if (times is None) == (n is None):
        raise CLIError("give either --times T [T ...] or --n N")
    if n is not None:
        if int(n) < 1:
            raise CLIError(f"--n must be >= 1, got {n}")
        return [(i + 1) / (int(n) + 1) for i in range(int(n))]
    out = [float(t) for t in times]
    bad = [t for t in out if not (0.0 <= t <= 1.0) or not np.isfinite(t)]
    if bad:
        raise CLIError(f"timestamps must lie in [0, 1]; got {bad}")
    if not out:
        raise CLIError("no timestamps given")
    return out


def interpolate_volumes(
    model,
    vol0: np.ndarray,
    vol1: np.ndarray,
    times: Sequence[float],
    device: str | torch.device = "cpu",
    chunk: int = 4,
    ct: bool | None = None,
) -> np.ndarray:
    """``vol0``, ``vol1``: ``(X, Y, Z)`` arrays in any intensity range -> ``(N, X, Y, Z)``
    float32 frames at ``times``, in the inputs' intensity range (see module docstring).
    ``ct``: whether the inputs are CT (``None``: guessed from the two volumes)."""
    import torch

    from .device import get_device

    with torch.no_grad():
        return _interpolate_volumes(model, vol0, vol1, times, get_device(device), chunk, ct)


def _interpolate_volumes(model, vol0, vol1, times, device, chunk: int, ct: bool | None) -> np.ndarray:
    import torch

    from .data.preprocess import normalize_scan

    v0 = np.nan_to_num(np.asarray(vol0, dtype=np.float32))
    v1 = np.nan_to_num(np.asarray(vol1, dtype=np.float32))
    if v0.shape != v1.shape or v0.ndim != 3:
        raise DataError(f"the two input volumes must be 3D with one shape; got {v0.shape} and {v1.shape}")
    (n0, n1), lo, hi = normalize_scan(np.stack([v0, v1]), ct=ct, return_range=True)
    lo0, lo1, hi0, hi1 = float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
    model = model.to(device).eval()
    I0 = torch.from_numpy(n0)[None, None].to(device)
    I1 = torch.from_numpy(n1)[None, None].to(device)
    feats = model.encode(I0, I1)
    frames = []
    ts = [float(t) for t in times]
    for k in range(0, len(ts), max(1, chunk)):
        t = torch.tensor(ts[k : k + chunk], dtype=torch.float32, device=device)
        img = model.decode(feats, t)["image"][:, 0].float().cpu().numpy()  # (n, X, Y, Z) in [0, 1]-ish
        frames.append(img)
    out = np.concatenate(frames, axis=0)
    tt = np.asarray(ts, dtype=np.float32)[:, None, None, None]
    lo = (1 - tt) * lo0 + tt * lo1
    hi = (1 - tt) * hi0 + tt * hi1
    return (lo + (hi - lo) * out).astype(np.float32)


def read_pair(input_4d=None, pair: Sequence[int] | None = None, inputs: Sequence | None = None):
    """``(vol0, vol1, reference_image)`` from a 4D NIfTI and two 0-based frame indices
    (:func:`check_frames`), or from two 3D NIfTI files (which must share shape and affine).
    Files are read by :func:`interp4d_lite.data.io.read_nifti` (a :class:`DataError` naming
    the file)."""
    return _read_inputs(input_4d, pair, inputs)[2:]


def _read_inputs(input_4d=None, pair: Sequence[int] | None = None, inputs: Sequence | None = None):
    """``(series, pair, vol0, vol1, reference_image)``: :func:`read_pair`'s volumes and, for a
    4D input, the whole series ``(X, Y, Z, T)`` as read once and the checked frame pair
    (``None`` and ``None`` for two 3D files)."""
    from .data.io import read_nifti

    if (input_4d is None) == (inputs is None):
        raise CLIError("give either --input 4D.nii.gz --frames I J, or --inputs A.nii.gz B.nii.gz")
    if input_4d is not None:
        pair = check_frames(pair)
        data, img = read_nifti(
            input_4d,
            ndim=4,
            hint=" (--input takes one 4D file; to interpolate between two 3D volumes pass both with --inputs A B)",
        )
        pair = check_frames(pair, data.shape[3], input_4d)
        return data, pair, data[..., pair[0]], data[..., pair[1]], img
    if len(inputs) != 2:
        raise CLIError("--inputs needs exactly two 3D NIfTI files")
    d0, img0 = read_nifti(inputs[0], ndim=3)
    d1, img1 = read_nifti(inputs[1], ndim=3)
    if d0.shape != d1.shape:
        raise DataError(f"{inputs[0]} and {inputs[1]} have different shapes {d0.shape} and {d1.shape}")
    if not np.allclose(img0.affine, img1.affine, atol=1e-4):
        raise DataError(f"{inputs[0]} and {inputs[1]} have different affines (not on one grid)")
    return None, None, d0, d1, img0


def write_frames(frames: np.ndarray, reference, out_path: str | os.PathLike, times: Sequence[float]) -> Path:
    """Write ``(N, X, Y, Z)`` as a 4D NIfTI ``(X, Y, Z, N)`` with the reference's affine and
    voxel sizes, atomically (:func:`interp4d_lite.data.io.write_nifti`); the timestamps go into
    the header description."""
    from .data.io import nifti_4d, write_nifti

    header = reference.header
    img = nifti_4d(
        frames,
        reference.affine,
        zooms=header.get_zooms()[:3],
        xyzt_units=header.get_xyzt_units() if hasattr(header, "get_xyzt_units") else None,
        descrip="interp4d t=" + ",".join(f"{t:.3g}" for t in times),
    )
    return write_nifti(img, out_path, compresslevel=1)


def interpolate_files(
    checkpoint,
    out,
    *,
    input_4d=None,
    pair=None,
    inputs=None,
    times=None,
    n=None,
    device: str = "auto",
    fallback: str = "none",
    cyclic: bool = True,
    data_kind: str | None = None,
    frames=None,
):
    """The ``interpolate`` command: read, interpolate with the student, self-check, write.

    ``input_4d`` and ``pair`` (its two 0-based input frames ``(I, J)``; ``frames`` is the older
    name of the argument, still accepted), or ``inputs``: two 3D files.

    ``checkpoint``: a student checkpoint path, a pretrained name (``"cardiac"``, ``"lung"``) or
    ``None`` (the pretrained student that fits ``data_kind``). ``data_kind`` (default: guessed
    from the intensities of the whole series, :func:`~interp4d_lite.data.preprocess.guess_data_kind`)
    also says how the scan is normalised: ``"lung"`` clips it to the HU window first, as
    ``evaluate`` and ``adapt`` do.
    The output path (:func:`interp4d_lite.io_utils.check_output_path`: a ``.nii`` or
    ``.nii.gz`` name in an existing, writable folder), the timestamps and the frame indices
    are checked first, before any file is read or the model is loaded.

    With a 4D ``input_4d``, the model is also scored against the linear blend on windows of the
    same series outside frames (I, J) (:func:`interp4d_lite.selfcheck.self_check`; never on the
    frames between I and J). ``fallback="blend"`` writes the linear blend instead when the
    model is below it there.

    Returns ``(path, check, written)``: the output, the :class:`~interp4d_lite.selfcheck.SelfCheck`
    (``None`` when the series has no window to score) and ``"model"`` or ``"linear_blend"``.
    """
    from .device import get_device
    from .weights import load_student

    if fallback not in ("none", "blend"):
        raise CLIError(f"--fallback must be 'none' or 'blend', not {fallback!r}")
    check_output_path(out)
    ts = parse_times(times, n)
    series, pair, vol0, vol1, ref = _read_inputs(input_4d, pair if pair is not None else frames, inputs)  # read once
    device = get_device(device)
    kind = data_kind or guess_data_kind(series if series is not None else [vol0, vol1])
    model = load_student(checkpoint, device=device, data_kind=kind)
    check = None
    if series is not None:
        check = _series_check(model, series, pair, cyclic, device, ct=kind == "lung")
    if fallback == "blend" and check is not None and check.gain_db < 0:
        frames_out = _blend_volumes(vol0, vol1, ts)
        written = "linear_blend"
    else:
        frames_out = interpolate_volumes(model, vol0, vol1, ts, device=device, ct=kind == "lung")
        written = "model"
    return write_frames(frames_out, ref, out, ts), check, written


def _blend_volumes(vol0, vol1, times) -> np.ndarray:
    """``(1 - t) vol0 + t vol1`` for every t: ``(N, X, Y, Z)`` float32."""
    v0, v1 = np.asarray(vol0, np.float32), np.asarray(vol1, np.float32)
    return np.stack([(1 - t) * v0 + t * v1 for t in times]).astype(np.float32)


def _series_check(model, series: np.ndarray, pair, cyclic: bool, device, ct: bool, max_windows: int = 3):
    """The self-check (:mod:`interp4d_lite.selfcheck`) of ``model`` on up to ``max_windows``
    windows of ``series`` ``(X, Y, Z, T)`` outside the target interval ``pair``, at the spacing
    closest to it; only the frames of those windows are normalised and scored."""
    from .selfcheck import allowed_frames, normalize_volumes, scan_windows, self_check, split_windows

    i, j = pair
    n = series.shape[3]
    windows = scan_windows(n, i, j, cyclic=cyclic)
    if not windows:
        return None
    _, held = split_windows(windows, abs(j - i), min(max_windows, len(windows) - 1) or 1)
    held = held or windows[:1]
    used = sorted({f for w in held for f in (w.a, w.b, *w.indices)})
    assert not set(used) - set(allowed_frames(n, i, j))
    data = normalize_volumes({k: series[..., k] for k in used}, ct=ct)
    return self_check(model, data, held, device=device)


def _run_interpolate(args) -> int:
    if args.n is None and args.times is None:
        raise CLIError("give --times T [T ...] or --n N")
    path, check, written = interpolate_files(
        args.checkpoint, args.out, input_4d=args.input, pair=args.frames, inputs=args.inputs, times=args.times,
        n=args.n, device=args.device, fallback=args.fallback, cyclic=args.cyclic, data_kind=args.data_kind,
    )  # fmt: skip
    if check is not None:
        print(check.line("student"))
        if check.gain_db < 0 and written == "model":
            print(
                "the student is below the linear blend on this scan: adapt it first (interp4d-lite adapt), "
                "or rerun with --fallback blend to write the blend"
            )
    elif args.input is not None:
        print("self-check: the series has no frames outside the interval to score the student on")
    else:
        print("self-check: two volumes (--inputs) hold no other frames to score the student on against the blend")
    if written == "linear_blend":
        print("--fallback blend: wrote the linear blend, not the student's frames")
    print(f"wrote {path}")
    return 0


def add_commands(subparsers) -> None:
    """Register ``interp4d-lite interpolate``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "interpolate",
        help="write interpolated frames between two volumes with a student checkpoint",
        description="Interpolate frames at the given timestamps between two volumes -- two frames of a 4D NIfTI "
        "(--input, --frames) or two 3D NIfTI files (--inputs) -- and write them as one 4D NIfTI on the input's own "
        "grid and affine. Each input is normalised as in training (CT-like intensities clipped to the HU window, "
        "then min-max), the student runs on the native grid (padding internally "
        "to its multiple and cropping back, no resampling) and the output is mapped back to the inputs' intensity "
        "range (interpolated linearly in t). With --input, the student is first scored against the linear blend "
        "on windows of the same series outside frames I..J (never on the frames between them), and a result below "
        "the blend is reported with its numbers.",
        formatter_class=fmt,
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="CKPT_OR_NAME",
        help="student checkpoint (distill, adapt) or a pretrained name: cardiac, lung (default: the pretrained "
        "student that fits the data, lung for CT intensities, else cardiac)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", default=None, metavar="NII4D", help="a 4D NIfTI (X, Y, Z, T)")
    src.add_argument("--inputs", nargs=2, default=None, metavar=("NII0", "NII1"), help="two 3D NIfTI files on one grid")
    p.add_argument(
        "--frames", type=int, nargs=2, default=None, metavar=("I", "J"), help="0-based frame indices of --input"
    )
    tg = p.add_mutually_exclusive_group()
    tg.add_argument(
        "--times", type=float, nargs="+", default=None, metavar="T", help="timestamps in [0, 1], e.g. 0.25 0.5 0.75"
    )
    tg.add_argument("--n", type=int, default=None, help="N evenly spaced timestamps strictly between 0 and 1")
    p.add_argument("--out", required=True, metavar="NII", help="output 4D NIfTI (X, Y, Z, N)")
    p.add_argument(
        "--fallback",
        choices=("none", "blend"),
        default="none",
        help="blend: write the linear blend when the self-check finds the student below it on this series",
    )
    p.add_argument(
        "--cyclic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the series is one cycle (a beat, a breath): self-check windows may wrap from the last frame to the first",
    )
    p.add_argument("--data-kind", choices=("cardiac", "lung"), default=None, help="which pretrained student fits")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_interpolate)
