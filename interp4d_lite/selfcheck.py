"""The self-check of a model on one scan: windows of the series outside the interval (I, J) to
interpolate, each middle frame scored against the linear blend.

A model that will interpolate frames strictly between ``I`` and ``J`` of a series is scored on
what the series holds outside them: :func:`scan_windows` lists the windows ``(a, a + gap)``
whose frames all avoid the open interval (I, J), :func:`split_windows` holds some back, and
:func:`self_check` compares the model with the linear blend on their middle frames (PSNR, peak 1,
normalised frames). ``interpolate`` scores the model it is given this way before it writes;
``adapt`` scores the student before and after fine-tuning on the windows it held back.
Frames strictly between I and J are never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data.windows import Window

__all__ = [
    "Window",
    "allowed_frames",
    "scan_windows",
    "split_windows",
    "SelfCheck",
    "self_check",
    "read_scan_frames",
    "normalize_volumes",
]


def allowed_frames(n: int, i: int, j: int) -> list[int]:
    """The frames of an ``n``-frame series that adaptation may read when ``(i, j)`` is to be
    interpolated: every frame but those strictly between ``i`` and ``j``."""
    lo, hi = min(i, j), max(i, j)
    return [k for k in range(n) if not lo < k < hi]


def scan_windows(n: int, i: int, j: int, cyclic: bool = True, min_gap: int = 2) -> list[Window]:
    """Every window of the series whose frames all avoid the open interval ``(i, j)``, with gaps from ``min_gap`` up to ``|j - i|`` (the spacing to
    interpolate; longer gaps are not needed to learn it). ``cyclic``: windows may wrap from
    the last frame to the first (one heartbeat, one breath)."""
    allowed = set(allowed_frames(n, i, j))
    out = []
    for gap in range(min_gap, abs(j - i) + 1):
        for a in range(n if cyclic else n - gap):
            w = Window(a, gap, n)
            if (not cyclic and a + gap >= n) or gap >= n:
                continue
            if set(w.indices) <= allowed:  # for a cycle this includes J -> I the other way round
                out.append(w)
    return out


def split_windows(windows: Sequence[Window], gap: int, holdout: int) -> tuple[list[Window], list[Window]]:
    """``(train, held_out)``: ``holdout`` windows held back for the self-check, those at the
    spacing closest to ``gap`` and spread over the series; the training windows share none of
    their frame pairs. Deterministic."""
    windows = list(windows)
    if holdout <= 0 or len(windows) <= holdout:
        return windows, []
    best = min(abs(w.gap - gap) for w in windows)
    at_gap = [w for w in windows if abs(w.gap - gap) == best]
    step = max(1, len(at_gap) // holdout)
    held = at_gap[::step][:holdout]
    return [w for w in windows if w not in held], held


@dataclass
class SelfCheck:
    """PSNR (dB, peak 1, normalised frames) of a model and of the linear blend on windows of
    the scan that the model did not train on."""

    model_db: float
    blend_db: float
    n_frames: int
    windows: list

    @property
    def gain_db(self) -> float:
        return self.model_db - self.blend_db

    def line(self, name: str = "model") -> str:
        """One line for the user: the two PSNRs, the gain, and a warning when below the blend."""
        where = ", ".join(f"{w.a}->{w.b}" for w in self.windows)
        text = (
            f"self-check on {self.n_frames} frames of the scan's own windows ({where}): {name} {self.model_db:.2f} dB, "
            f"linear blend {self.blend_db:.2f} dB ({self.gain_db:+.2f} dB)"
        )
        if self.gain_db < 0:
            text += f"; WARNING: the {name} is below the linear blend on this scan"
        return text


def self_check(model, volumes: dict[int, np.ndarray], windows: Sequence[Window], device="cpu") -> SelfCheck | None:
    """Score ``model`` (a student) and the linear blend on every middle frame of ``windows``
    (``volumes``: ``{index: (X, Y, Z)}`` normalised frames of the scan),
    each window played both ways (``a -> b`` and ``b -> a`` with ``t -> 1 - t``: the held-out
    windows run the other way in time than the interval to interpolate); ``None`` when there are
    no windows. PSNR per frame, averaged."""
    import torch

    from .metrics import psnr
    from .models.baselines import linear_blend

    windows = list(windows)
    if not windows:
        return None
    model = model.to(device).eval()
    vol = lambda i: torch.from_numpy(volumes[i])[None, None].float().to(device)  # noqa: E731
    got, blend = [], []
    with torch.no_grad():
        for w in windows:
            trip = w.triplets()
            gt = torch.cat([vol(tr[1]) for tr in trip])
            for I0, I1, t in (
                (vol(w.a), vol(w.b), [tr[3] for tr in trip]),
                (vol(w.b), vol(w.a), [1 - tr[3] for tr in trip]),
            ):
                tt = torch.tensor(t, dtype=torch.float32, device=device)
                n = len(trip)
                out = model(I0.expand(n, -1, -1, -1, -1), I1.expand(n, -1, -1, -1, -1), tt)["image"]
                got += psnr(out.clamp(0, 1).float(), gt, reduction="none").tolist()
                blend += psnr(linear_blend(I0, I1, tt)["image"], gt, reduction="none").tolist()
    return SelfCheck(float(np.mean(got)), float(np.mean(blend)), len(got), windows)


def read_scan_frames(path, indices: Sequence[int], ct: bool | None = None) -> tuple[dict[int, np.ndarray], object, int]:
    """``({index: (X, Y, Z) float32 in [0, 1]}, image, n_frames)``: only the frames ``indices``
    of a 4D NIfTI are read, so frames not named are never touched; they are normalised as every
    route normalises a scan (:func:`~interp4d_lite.data.preprocess.normalize_scan`: CT-like
    clipped to the HU window, ``ct=None`` guesses it from the frames read, then min-max per frame).
    Errors are one line naming the file (:class:`~interp4d_lite.errors.DataError`)."""
    from .data.io import read_nifti_frames

    data, img, n = read_nifti_frames(path, indices)
    return normalize_volumes(data, ct), img, n


def normalize_volumes(volumes: dict[int, np.ndarray], ct: bool | None = None) -> dict[int, np.ndarray]:
    """``{index: (X, Y, Z)}`` raw volumes of one scan -> the same volumes normalised together by
    :func:`~interp4d_lite.data.preprocess.normalize_scan` (``ct=None``: guessed from them)."""
    from .data.preprocess import normalize_scan

    if not volumes:
        return {}
    keys = list(volumes)
    normed = normalize_scan(np.stack([volumes[k] for k in keys]), ct=ct)
    return dict(zip(keys, normed, strict=True))
