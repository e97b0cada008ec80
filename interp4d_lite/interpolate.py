"""Interpolate new frames between two volumes with a trained student, on the
input's own grid.

What happens to an input of any size (documented choice):

1. each input volume is min-max normalised to [0, 1] on its own (as in training);
2. the student runs on the input's **own grid**: it pads internally (replicate) to its
   pyramid's multiple and crops its outputs back, so nothing is resampled, and the
   output has exactly the input's shape, voxel size and affine;
3. intensities are mapped back to the input's range: frame t gets
   ``lo_t + (hi_t - lo_t) * I_t`` with ``lo_t = (1 - t) lo_0 + t lo_1`` (same for hi).

The encoder runs once per pair; every timestamp only costs the decoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import CLIError, DataError
from .io_utils import check_frames, check_output_path

__all__ = ["interpolate_volumes", "check_frames", "read_pair", "write_frames", "interpolate_files", "parse_times"]


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


@torch.no_grad()
def interpolate_volumes(
    model,
    vol0: np.ndarray,
    vol1: np.ndarray,
    times: Sequence[float],
    device: str | torch.device = "cpu",
    chunk: int = 4,
) -> np.ndarray:
    """``vol0``, ``vol1``: ``(X, Y, Z)`` arrays in any intensity range -> ``(N, X, Y, Z)``
    float32 frames at ``times``, in the inputs' intensity range (see module docstring)."""
    from .device import get_device

    device = get_device(device)
    v0 = np.nan_to_num(np.asarray(vol0, dtype=np.float32))
    v1 = np.nan_to_num(np.asarray(vol1, dtype=np.float32))
    if v0.shape != v1.shape or v0.ndim != 3:
        raise DataError(f"the two input volumes must be 3D with one shape; got {v0.shape} and {v1.shape}")
    lo0, hi0, lo1, hi1 = float(v0.min()), float(v0.max()), float(v1.min()), float(v1.max())
    n0 = (v0 - lo0) / max(hi0 - lo0, 1e-8)
    n1 = (v1 - lo1) / max(hi1 - lo1, 1e-8)
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


def read_pair(input_4d=None, frames: Sequence[int] | None = None, inputs: Sequence | None = None):
    """``(vol0, vol1, reference_image)`` from a 4D NIfTI and two 0-based frame indices
    (:func:`check_frames`), or from two 3D NIfTI files (which must share shape and affine).
    Files are read by :func:`interp4d_lite.data.io.read_nifti` (a :class:`DataError` naming
    the file)."""
    from .data.io import read_nifti

    if (input_4d is None) == (inputs is None):
        raise CLIError("give either --input 4D.nii.gz --frames I J, or --inputs A.nii.gz B.nii.gz")
    if input_4d is not None:
        frames = check_frames(frames)
        data, img = read_nifti(
            input_4d,
            ndim=4,
            hint=" (--input takes one 4D file; to interpolate between two 3D volumes pass both with --inputs A B)",
        )
        n = data.shape[3]
        for f in frames:
            if not 0 <= int(f) < n:
                raise CLIError(f"frame index {f} out of range for {input_4d}: it has {n} frames (0-based: 0..{n - 1})")
        return data[..., int(frames[0])], data[..., int(frames[1])], img
    if len(inputs) != 2:
        raise CLIError("--inputs needs exactly two 3D NIfTI files")
    d0, img0 = read_nifti(inputs[0], ndim=3)
    d1, img1 = read_nifti(inputs[1], ndim=3)
    if d0.shape != d1.shape:
        raise DataError(f"{inputs[0]} and {inputs[1]} have different shapes {d0.shape} and {d1.shape}")
    if not np.allclose(img0.affine, img1.affine, atol=1e-4):
        raise DataError(f"{inputs[0]} and {inputs[1]} have different affines (not on one grid)")
    return d0, d1, img0


def write_frames(frames: np.ndarray, reference, out_path: str | os.PathLike, times: Sequence[float]) -> Path:
    """Write ``(N, X, Y, Z)`` as a 4D NIfTI ``(X, Y, Z, N)`` with the reference's affine and
    voxel sizes; the timestamps go into the header description."""
    import nibabel as nib

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    data = np.moveaxis(np.asarray(frames, dtype=np.float32), 0, -1)  # (X, Y, Z, N)
    affine = np.asarray(reference.affine, dtype=np.float64)
    img = nib.Nifti1Image(data, affine)
    zooms = tuple(float(z) for z in reference.header.get_zooms()[:3])
    img.header.set_zooms(zooms + (1.0,))
    img.header.set_xyzt_units(*reference.header.get_xyzt_units()) if hasattr(
        reference.header, "get_xyzt_units"
    ) else None
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    desc = ("interp4d t=" + ",".join(f"{t:.3g}" for t in times))[:79]
    img.header["descrip"] = desc.encode()
    nib.save(img, str(out_path))
    return out_path


def guess_data_kind(volume: np.ndarray) -> str:
    """``"lung"`` for CT-like intensities (air near -1000 HU), else ``"cardiac"``: which
    pretrained student fits a volume when none is named."""
    return "lung" if float(np.min(volume)) < -500 else "cardiac"


def interpolate_files(
    checkpoint,
    out,
    *,
    input_4d=None,
    frames=None,
    inputs=None,
    times=None,
    n=None,
    device: str = "auto",
    fallback: str = "none",
    cyclic: bool = True,
    data_kind: str | None = None,
):
    """The ``interpolate`` command: read, interpolate with the student, self-check, write.

    ``checkpoint``: a student checkpoint path, a pretrained name (``"cardiac"``, ``"lung"``) or
    ``None`` (the pretrained student that fits ``data_kind``, guessed from the intensities).
    The output path (:func:`interp4d_lite.io_utils.check_output_path`: a ``.nii`` or
    ``.nii.gz`` name in an existing, writable folder), the timestamps and the frame indices
    are checked first, before any file is read or the model is loaded.

    With a 4D ``input_4d``, the model is also scored against the linear blend on windows of the
    same series outside frames (I, J) (:func:`interp4d_lite.adapt.self_check`; never on the
    frames between I and J). ``fallback="blend"`` writes the linear blend instead when the
    model is below it there.

    Returns ``(path, check, written)``: the output, the :class:`~interp4d_lite.adapt.SelfCheck`
    (``None`` when the series has no window to score) and ``"model"`` or ``"linear_blend"``.
    """
    from .weights import load_student

    if fallback not in ("none", "blend"):
        raise CLIError(f"--fallback must be 'none' or 'blend', not {fallback!r}")
    check_output_path(out)
    ts = parse_times(times, n)
    vol0, vol1, ref = read_pair(input_4d, frames, inputs)
    model = load_student(checkpoint, device=device, data_kind=data_kind or guess_data_kind(vol0))
    check = None
    if input_4d is not None:
        check = _series_check(model, input_4d, frames, cyclic, device)
    if fallback == "blend" and check is not None and check.gain_db < 0:
        frames_out = _blend_volumes(vol0, vol1, ts)
        written = "linear_blend"
    else:
        frames_out = interpolate_volumes(model, vol0, vol1, ts, device=device)
        written = "model"
    return write_frames(frames_out, ref, out, ts), check, written


def _blend_volumes(vol0, vol1, times) -> np.ndarray:
    """``(1 - t) vol0 + t vol1`` for every t: ``(N, X, Y, Z)`` float32."""
    v0, v1 = np.asarray(vol0, np.float32), np.asarray(vol1, np.float32)
    return np.stack([(1 - t) * v0 + t * v1 for t in times]).astype(np.float32)


def _series_check(model, input_4d, frames, cyclic: bool, device, max_windows: int = 3):
    """The self-check of ``model`` on up to ``max_windows`` windows of the series outside the
    target interval, at the spacing closest to it."""
    from .adapt import allowed_frames, read_scan_frames, scan_windows, self_check, split_windows
    from .data.io import read_nifti_frames

    i, j = check_frames(frames)
    n = read_nifti_frames(input_4d, [])[2]
    windows = scan_windows(n, i, j, cyclic=cyclic)
    if not windows:
        return None
    _, held = split_windows(windows, abs(j - i), min(max_windows, len(windows) - 1) or 1)
    held = held or windows[:1]
    data, _, _ = read_scan_frames(input_4d, sorted({f for w in held for f in (w.a, w.b, *w.frames)}))
    assert not set(data) - set(allowed_frames(n, i, j))
    from .device import get_device

    return self_check(model, data, held, device=get_device(device))
