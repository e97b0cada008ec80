"""Exercises that check themselves: ``check_*(your_function)`` for the notebooks.

Each ``check_*`` takes the learner's function (or answer), runs it on small test
inputs drawn with a fixed seed, and compares the result with the reference (the
package's own code, or the formula of docs/METHOD.md). It prints one line:

* ``PASS``: equal to the reference on every test input (tolerance in the message);
* ``NOT ATTEMPTED YET``: the function raises ``NotImplementedError`` or returns ``None``
  (what the notebook's stub does, so a notebook runs top to bottom before anyone
  has filled anything in);
* ``NOT YET``: a hint naming what is wrong. The hints come from comparing the answer
  with deliberately wrong variants of the reference (axis order swapped, sign of the
  field flipped, ``t`` and ``1 - t`` exchanged, a missing normalisation, ...): when the
  answer equals a variant, the check says which mistake that is; otherwise it says
  which output differs, and by how much.

Every check returns a :class:`CheckResult` (truthy when it passed) and never raises,
unless ``strict=True``: then anything but a pass raises :class:`ExerciseError`.

Which notebook uses which check (``EXERCISES`` lists them; it is the ``exercises`` column of
the one notebook table, :data:`interp4d_lite.tutorial.registry.REGISTRY`):

=====================  =====================================================================
notebook               checks
=====================  =====================================================================
00_quickstart          :func:`check_to_batch`, :func:`check_linear_blend`
01_data_loading        :func:`check_minmax_per_frame`, :func:`check_hu_to_unit`, :func:`check_warp_mm`
02_teacher_training    :func:`check_translation_fields`, :func:`check_charbonnier`,
                       :func:`check_gradient_smoothness`
03_distillation        :func:`check_upsample_field`, :func:`check_field_distillation`
04_timestamp_sweeps    :func:`check_endpoint_error`, :func:`check_folding_percent`
05_visualizers         :func:`check_window_level`, :func:`check_nearest_frame`
06_real_data           :func:`check_surrogate_times`, :func:`check_lung_phase_times`
=====================  =====================================================================

and two checks of the notebooks' "build it" blocks, to try breaking them on purpose:
:func:`check_warp` (01) and :func:`check_fusion_weights` (03).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .registry import EXERCISES

__all__ = [
    "CheckResult",
    "ExerciseError",
    "EXERCISES",
    "all_checks",
    "check_to_batch",
    "check_linear_blend",
    "check_minmax_per_frame",
    "check_hu_to_unit",
    "check_warp_mm",
    "check_warp",
    "check_translation_fields",
    "check_charbonnier",
    "check_gradient_smoothness",
    "check_upsample_field",
    "check_field_distillation",
    "check_fusion_weights",
    "check_endpoint_error",
    "check_folding_percent",
    "check_window_level",
    "check_nearest_frame",
    "check_surrogate_times",
    "check_lung_phase_times",
]

# EXERCISES (imported above): the self-checking exercises of each notebook, from the notebook
# table (the notebook tests check they are there, and that each names a check of this module)


class ExerciseError(AssertionError):
    """Raised by a ``check_*(..., strict=True)`` that did not pass."""


@dataclass
class CheckResult:
    """What a check found. ``bool(result)`` is ``result.passed``."""

    name: str
    passed: bool
    attempted: bool
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, p, cycle):  # IPython shows the message, not the dataclass
        p.text(f"CheckResult(passed={self.passed})")


# --------------------------------------------------------------------------- machinery
class _Wrong(Exception):
    """Raised inside a check when the answer is wrong; carries the hint."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint


class _NotAttempted(Exception):
    pass


def _call(fn: Callable, args: Sequence, kwargs: dict | None = None):
    """Call the learner's function on copies of the inputs (so in-place edits do no harm)."""
    args = [a.clone() if isinstance(a, torch.Tensor) else (a.copy() if isinstance(a, np.ndarray) else a) for a in args]
    try:
        out = fn(*args, **(kwargs or {}))
    except NotImplementedError:
        raise _NotAttempted() from None
    except _Wrong:
        raise
    except Exception as exc:  # the learner's code failed: say how, with the shapes it got
        shapes = ", ".join(_describe(a) for a in args)
        raise _Wrong(
            f"your function raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            f"(called with {shapes}). {_exception_hint(exc)}".strip()
        ) from None
    if out is None or out is Ellipsis:
        raise _NotAttempted()
    return out


def _exception_hint(exc: Exception) -> str:
    text = str(exc)
    if "size of tensor" in text or "must match the size" in text or "broadcast" in text or "shape" in text:
        return (
            "A shape mismatch: reshape 1-D tensors before multiplying with volumes "
            "(e.g. t of shape (N,) -> t.view(-1, 1, 1, 1, 1))."
        )
    return ""


def _describe(a) -> str:
    if isinstance(a, torch.Tensor):
        return f"tensor{tuple(a.shape)}"
    if isinstance(a, np.ndarray):
        return f"array{a.shape}"
    if isinstance(a, (list, tuple)):
        return f"{type(a).__name__} of {len(a)}"
    return repr(a)


def _as_tensor(x, what: str = "your result") -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double()
    if isinstance(x, (np.ndarray, np.generic, float, int, list, tuple)):
        try:
            return torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            pass
    raise _Wrong(f"{what} is a {type(x).__name__}; return a torch tensor or a numpy array")


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    if not torch.equal(nan_a, nan_b):
        return False
    ok = ~nan_a
    return bool(torch.allclose(a[ok], b[ok], atol=atol, rtol=rtol)) if ok.any() else True


def _outputs(x, n: int | None) -> list[torch.Tensor]:
    """The result as a list of ``n`` tensors (``n=None``: one output)."""
    if n is None:
        return [_as_tensor(x)]
    if not isinstance(x, (tuple, list)) or len(x) != n:
        raise _Wrong(
            f"return {n} values (a tuple), got {_describe(x) if isinstance(x, (tuple, list)) else type(x).__name__}"
        )
    return [_as_tensor(v, f"output {i}") for i, v in enumerate(x)]


def _compare(
    got,
    ref,
    variants,
    atol: float,
    rtol: float,
    n_out: int | None,
    names: Sequence[str] | None = None,
    shape_hints: dict | None = None,
) -> None:
    """Raise :class:`_Wrong` unless ``got`` equals ``ref``; the hint of the first wrong
    variant that ``got`` equals, else a description of the difference."""
    g, r = _outputs(got, n_out), _outputs(ref, n_out)
    for _name, hint, value in variants:  # a known mistake (checked first: a variant may have the right shape)
        v = _outputs(value, n_out)
        if all(_close(a, b, atol, rtol) for a, b in zip(g, v)) and not all(
            _close(a, b, atol, rtol) for a, b in zip(g, r)
        ):
            raise _Wrong(hint)
    names = names or ([f"output {i}" for i in range(len(r))] if n_out else ["the result"])
    for i, (a, b) in enumerate(zip(g, r)):
        if a.shape != b.shape:
            extra = (shape_hints or {}).get(tuple(a.shape), "")
            if not extra and a.numel() == b.numel():
                extra = "Same number of values: are the axes in the wrong order, or a transpose/reshape too many?"
            raise _Wrong(f"wrong shape of {names[i]}: got {tuple(a.shape)}, expected {tuple(b.shape)}. {extra}".strip())
    for i, (a, b) in enumerate(zip(g, r)):
        if not torch.equal(torch.isnan(a), torch.isnan(b)):
            raise _Wrong(
                f"{names[i]} has NaN where the reference has none (or the other way round): "
                f"{int(torch.isnan(a).sum())} NaN in yours, {int(torch.isnan(b).sum())} expected."
            )
        if not _close(a, b, atol, rtol):
            ok = ~torch.isnan(b)
            diff = float((a[ok] - b[ok]).abs().max())
            raise _Wrong(
                f"{names[i]} differs from the reference by up to {diff:.3g} "
                f"(tolerance {atol:g} + {rtol:g}·|reference|)."
            )


def _report(name: str, body: Callable[[], str], strict: bool, quiet: bool) -> CheckResult:
    try:
        detail = body()
        res = CheckResult(name, True, True, f"PASS {name}: {detail}")
    except _NotAttempted:
        res = CheckResult(
            name,
            False,
            False,
            f"NOT ATTEMPTED YET {name}: your function raises "
            "NotImplementedError (or returns None). Fill it in and run the cell again.",
        )
    except _Wrong as w:
        res = CheckResult(name, False, True, f"NOT YET {name}: {w.hint}", hint=w.hint)
    if not quiet:
        print(res.message)
    if strict and not res.passed:
        raise ExerciseError(res.message)
    return res


def _rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _smooth_volume(shape, seed: int = 0, sigma: float = 1.5) -> torch.Tensor:
    """A smooth random volume ``(1, 1, *shape)`` in [0, 1] (so warps and gradients are meaningful)."""
    x = torch.rand((1, 1, *shape), generator=_rng(seed), dtype=torch.float64)
    k = int(2 * round(2 * sigma) + 1)
    g = torch.exp(-0.5 * ((torch.arange(k, dtype=torch.float64) - k // 2) / sigma) ** 2)
    g = g / g.sum()
    for axis in range(3):
        shape_k = [1, 1, 1, 1, 1]
        shape_k[2 + axis] = k
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = k // 2
        x = F.conv3d(F.pad(x, pad, mode="replicate"), g.view(shape_k))
    x = (x - x.min()) / (x.max() - x.min())
    return x.float()


def _smooth_field(shape, amplitude: float, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A smooth random displacement field ``(batch, 3, *shape)``, about ``amplitude`` voxels."""
    comps = [
        (_smooth_volume(shape, seed=seed + 10 * b + c, sigma=2.0)[0, 0] - 0.5) * 2 * amplitude
        for b in range(batch)
        for c in range(3)
    ]
    return torch.stack(comps).view(batch, 3, *shape)


# --------------------------------------------------------------------------- 00 quickstart
def check_to_batch(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(volume)``: a numpy volume ``(X, Y, Z)`` (any float dtype) -> the ``(1, 1, X, Y, Z)``
    float32 torch tensor every network of the package takes (batch and channel axes first)."""

    def body():
        vol = np.random.default_rng(0).random((5, 4, 3))  # float64, three different sizes
        got = _call(fn, [vol])
        if not isinstance(got, torch.Tensor):
            raise _Wrong(f"return a torch tensor (torch.as_tensor / torch.from_numpy), not a {type(got).__name__}")
        ref = torch.as_tensor(vol, dtype=torch.float32)[None, None]
        shape_hints = {
            (5, 4, 3, 1, 1): "The batch and channel axes go first: (1, 1, X, Y, Z), e.g. volume[None, None].",
            (1, 5, 4, 3): "Missing an axis: networks want (batch, channel, X, Y, Z); add both (volume[None, None]).",
            (5, 4, 3): "Add the batch and channel axes: volume[None, None].",
            (1, 1, 3, 4, 5): "The spatial axes are reversed: keep the NIfTI voxel order (X, Y, Z), no transposes.",
        }
        variants = [
            (
                "transposed",
                "The spatial axes are in the wrong order: keep (X, Y, Z) as in the array, no transposes.",
                torch.as_tensor(vol.transpose(2, 1, 0).copy(), dtype=torch.float32)[None, None],
            )
        ]
        _compare(got, ref, variants, 1e-6, 0, None, shape_hints=shape_hints)
        if got.dtype != torch.float32:
            raise _Wrong(
                f"the values are right but the dtype is {got.dtype}; the networks' weights are float32 "
                "(torch.as_tensor(volume, dtype=torch.float32))."
            )
        return "a (X, Y, Z) array becomes a (1, 1, X, Y, Z) float32 tensor."

    return _report("check_to_batch", body, strict, quiet)


def _ref_linear_blend(I0, I1, t):
    t = t.view(-1, 1, 1, 1, 1)
    return (1 - t) * I0 + t * I1


def check_linear_blend(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(I0, I1, t)``: ``I0, I1 (N, 1, X, Y, Z)``, ``t (N,)`` -> the cross-fade
    ``(1 - t) I0 + t I1``, ``(N, 1, X, Y, Z)`` (t = 0 gives I0, t = 1 gives I1)."""

    def body():
        g = _rng(1)
        I0, I1 = torch.rand(3, 1, 6, 5, 4, generator=g), torch.rand(3, 1, 6, 5, 4, generator=g)
        t = torch.tensor([0.1, 0.5, 0.8])
        got = _call(fn, [I0, I1, t])
        ref = _ref_linear_blend(I0, I1, t)
        tv = t.view(-1, 1, 1, 1, 1)
        variants = [
            (
                "t reversed",
                "The t convention is reversed: t = 0 must give I0 and t = 1 must give I1, "
                "so I0 gets the weight (1 - t).",
                tv * I0 + (1 - tv) * I1,
            ),
            (
                "ignores t",
                "Your blend ignores t (it is the same for every t): weight I0 by (1 - t) and I1 by t.",
                0.5 * (I0 + I1),
            ),
            ("sum", "The weights must sum to 1: (1 - t) * I0 + t * I1.", I0 + tv * I1),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        # a second case: one pair, one t
        I0b, I1b, tb = I0[:1], I1[:1], torch.tensor([0.3])
        _compare(_call(fn, [I0b, I1b, tb]), _ref_linear_blend(I0b, I1b, tb), [], 1e-5, 1e-5, None)
        return "(1 - t) I0 + t I1 for every t of the batch."

    return _report("check_linear_blend", body, strict, quiet)


# --------------------------------------------------------------------------- 01 data
def check_minmax_per_frame(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(frames)``: numpy ``(T, X, Y, Z)`` -> each frame rescaled to [0, 1] on its own
    (its min to 0, its max to 1); a constant frame becomes all zeros (no NaN)."""
    from ..data.preprocess import minmax_per_frame

    def body():
        rng = np.random.default_rng(2)
        frames = (
            rng.random((3, 5, 4, 3)) * np.array([1.0, 5.0, 20.0])[:, None, None, None]
            + np.array([0.0, -2.0, 40.0])[:, None, None, None]
        ).astype(np.float32)
        got = _call(fn, [frames])
        ref = minmax_per_frame(frames)
        variants = [
            (
                "per volume",
                "You normalised the whole 4D array at once: take min and max of each frame "
                "separately (over X, Y, Z: axis=(1, 2, 3), keepdims=True).",
                (frames - frames.min()) / (frames.max() - frames.min()),
            ),
            (
                "max only",
                "Subtract each frame's minimum before dividing by its range (max - min).",
                frames / frames.max(axis=(1, 2, 3), keepdims=True),
            ),
            (
                "no min",
                "Divide by the range max - min, not by the max.",
                (frames - frames.min(axis=(1, 2, 3), keepdims=True)) / frames.max(axis=(1, 2, 3), keepdims=True),
            ),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        const = frames.copy()
        const[1] = 7.0
        got2 = _call(fn, [const])
        if np.isnan(np.asarray(_as_tensor(got2))).any():
            raise _Wrong(
                "a constant frame (max == min) gives NaN: divide by 1 where the range is 0, "
                "so that frame becomes all zeros."
            )
        _compare(got2, minmax_per_frame(const), [], 1e-5, 1e-5, None)
        return "every frame spans [0, 1] on its own, constant frames become 0."

    return _report("check_minmax_per_frame", body, strict, quiet)


def check_hu_to_unit(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(hu)``: CT intensities in Hounsfield units -> [0, 1] with the fixed lung window:
    clip to [-1400, 200] HU, then ``(hu + 1400) / 1600``."""
    from ..data.phantoms import hu_to_unit

    def body():
        hu = np.linspace(-2000, 1500, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
        np.random.default_rng(3).shuffle(hu.reshape(-1))
        got = _call(fn, [hu])
        ref = hu_to_unit(hu)
        variants = [
            (
                "no clip",
                "Clip to the window [-1400, 200] HU first (np.clip): air below -1400 and bone above 200 "
                "must not stretch the scale.",
                (hu + 1400.0) / 1600.0,
            ),
            (
                "minmax",
                "Use the fixed window, not this volume's own min and max: the same HU must give the same "
                "value in every scan.",
                (hu - hu.min()) / (hu.max() - hu.min()),
            ),
            (
                "wrong offset",
                "The offset: -1400 HU must map to 0 and 200 HU to 1, i.e. (hu + 1400) / 1600.",
                (np.clip(hu, -1400, 200) - 200) / 1600.0 + 1,
            ),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "clip to [-1400, 200] HU and map that window linearly to [0, 1]."

    return _report("check_hu_to_unit", body, strict, quiet)


def _ref_warp(image, u):
    from ..models.warp import warp

    return warp(image, u)


def check_warp_mm(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(image, u_mm, spacing)``: ``image (1, 1, X, Y, Z)``, a displacement ``u_mm
    (1, 3, X, Y, Z)`` in **millimetres**, ``spacing (sx, sy, sz)`` mm -> the backward-warped
    image ``I(x + u(x))`` (convert to voxels, then use ``interp4d_lite.models.warp``)."""

    def body():
        shape = (10, 8, 6)
        image = _smooth_volume(shape, seed=4)
        spacing = (1.5, 2.0, 5.0)
        sp = torch.tensor(spacing).view(1, 3, 1, 1, 1)
        u_vox = _smooth_field(shape, 1.5, seed=5)
        u_mm = u_vox * sp
        got = _call(fn, [image, u_mm, spacing])
        ref = _ref_warp(image, u_mm / sp)
        variants = [
            (
                "no conversion",
                "u is in millimetres but warp wants voxels: divide channel c by spacing[c] first.",
                _ref_warp(image, u_mm),
            ),
            (
                "multiplied",
                "Divide by the spacing (mm / (mm per voxel) = voxels), do not multiply.",
                _ref_warp(image, u_mm * sp),
            ),
            (
                "reversed spacing",
                "Axis order: channel c of the field goes with spacing[c] in (X, Y, Z) order; "
                "you paired it with the reversed spacing.",
                _ref_warp(image, u_mm / sp.flip(1)),
            ),
            (
                "sign",
                "The sign of the field is flipped: backward warping samples I at x + u(x), with u as given.",
                _ref_warp(image, -u_mm / sp),
            ),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "millimetres divided by the spacing, then warp(I, u)(x) = I(x + u(x))."

    return _report("check_warp_mm", body, strict, quiet)


def check_warp(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(image, u)``: ``image (B, C, X, Y, Z)``, ``u (B, 3, X, Y, Z)`` voxels -> ``I(x + u(x))``
    (bilinear, border padding), equal to ``interp4d_lite.models.warp``."""

    def body():
        shape = (9, 7, 5)
        image = torch.cat([_smooth_volume(shape, seed=6), _smooth_volume(shape, seed=7)])
        u = _smooth_field(shape, 2.0, seed=8, batch=2)
        got = _call(fn, [image, u])
        ref = _ref_warp(image, u)

        def gs(pos_xyz, align=True, padding="border"):
            size = torch.tensor(shape, dtype=u.dtype).view(1, 3, 1, 1, 1)
            norm = 2 * pos_xyz / (size - 1) - 1  # voxel 0 -> -1, N-1 -> +1
            return F.grid_sample(
                image, norm.permute(0, 2, 3, 4, 1).flip(-1), mode="bilinear", padding_mode=padding, align_corners=align
            )

        base = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=u.dtype) for n in shape], indexing="ij"))[None]
        no_flip = F.grid_sample(
            image,
            (2 * (base + u) / (torch.tensor(shape).view(1, 3, 1, 1, 1) - 1) - 1).permute(0, 2, 3, 4, 1),
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        variants = [
            (
                "axis order",
                "Axis order: grid_sample reads the last axis of the grid as (x, y, z) = (W, H, D), i.e. "
                "(Z, Y, X) of our volume; flip the channel order (.flip(-1)) after moving channels last.",
                no_flip,
            ),
            (
                "sign",
                "The sign of the field is flipped: backward warping samples at x + u(x), not x - u(x).",
                gs(base - u),
            ),
            (
                "align_corners",
                "Normalisation and align_corners disagree: with positions normalised as "
                "2 i / (N - 1) - 1 (voxel 0 -> -1, voxel N-1 -> +1, as MONAI's Warp), grid_sample needs "
                "align_corners=True.",
                gs(base + u, align=False),
            ),
            (
                "padding",
                "Outside the volume, repeat the border voxel (padding_mode='border'), not zeros.",
                gs(base + u, padding="zeros"),
            ),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "equal to interp4d_lite.models.warp (voxels, (X, Y, Z) channels, align_corners=True, border)."

    return _report("check_warp", body, strict, quiet)


# --------------------------------------------------------------------------- 02 teacher
def check_translation_fields(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(d, t)``: the tissue translates uniformly by ``t * d`` voxels at time t (``d (3,)``,
    a float ``t``), so ``I_t(x) = I0(x - t d)``. Return the true ``(u_t0, u_t1)``, each ``(3,)``,
    in the warping convention ``warp(I0, u_t0) = I_t``, ``warp(I1, u_t1) = I_t``."""

    def body():
        d = torch.tensor([3.0, -2.0, 1.0])
        for t in (0.3, 0.75):
            got = _call(fn, [d, t])
            ref = (-t * d, (1 - t) * d)
            variants = [
                (
                    "sign",
                    "Direction: u_t0 lives on the grid of time t and points *into frame 0*. The tissue moved by "
                    "+t·d since frame 0, so to find it in I0 you look back: u_t0 = -t·d (and u_t1 = +(1 - t)·d).",
                    (t * d, -(1 - t) * d),
                ),
                (
                    "t reversed",
                    "The t convention is reversed: at t = 0 the frame is I0, so u_t0 must vanish at t = 0 "
                    "(u_t0 = -t·d, u_t1 = (1 - t)·d).",
                    (-(1 - t) * d, t * d),
                ),
                (
                    "both",
                    "Both the direction and the t convention are off: u_t0 = -t·d vanishes at t = 0 and points "
                    "back into frame 0.",
                    ((1 - t) * d, -t * d),
                ),
                (
                    "u_t1 sign",
                    "u_t0 is right; u_t1 points from time t *forward* into frame 1, where the tissue has "
                    "moved on by (1 - t)·d: u_t1 = +(1 - t)·d.",
                    (-t * d, -(1 - t) * d),
                ),
                ("u_t0 sign", "u_t1 is right; u_t0 must point back into frame 0: u_t0 = -t·d.", (t * d, (1 - t) * d)),
            ]
            _compare(got, ref, variants, 1e-6, 1e-6, 2, names=["u_t0", "u_t1"])
        return "u_t0 = -t·d and u_t1 = (1 - t)·d: what linear motion assumes everywhere."

    return _report("check_translation_fields", body, strict, quiet)


def check_charbonnier(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(pred, target, eps=1e-3)`` -> the scalar mean of ``sqrt((pred - target)^2 + eps^2)``."""
    from ..losses import charbonnier

    def body():
        g = _rng(9)
        pred = torch.rand(2, 1, 6, 5, 4, generator=g)
        target = pred + 2e-3 * torch.randn(2, 1, 6, 5, 4, generator=g)  # small errors: eps matters
        got = _call(fn, [pred, target])
        d = pred - target
        ref = charbonnier(pred, target)
        variants = [
            ("no eps", "Keep ε: sqrt(d² + ε²) is smooth at d = 0, |d| (mean absolute error) is not.", d.abs().mean()),
            ("eps not squared", "Inside the root goes ε², not ε: sqrt(d² + ε²).", torch.sqrt(d * d + 1e-3).mean()),
            (
                "sum",
                "Average over voxels (mean), not sum: the loss must not grow with the volume size.",
                torch.sqrt(d * d + 1e-6).sum(),
            ),
            ("no sqrt", "Take the square root per voxel: sqrt(d² + ε²), not d² + ε².", (d * d + 1e-6).mean()),
        ]
        if isinstance(got, torch.Tensor) and got.numel() != 1:
            raise _Wrong(f"return one number (a 0-d tensor: the mean over every voxel), got shape {tuple(got.shape)}")
        _compare(got, ref, variants, 1e-7, 1e-4, None)
        return "mean of sqrt(d² + ε²)."

    return _report("check_charbonnier", body, strict, quiet)


def check_gradient_smoothness(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(u)``: a field ``(B, 3, X, Y, Z)`` -> the mean squared forward difference along each of
    the three spatial axes, averaged over the axes (a scalar)."""
    from ..losses import gradient_smoothness

    def body():
        u = _smooth_field((8, 7, 6), 2.0, seed=11) + 0.05 * torch.randn(1, 3, 8, 7, 6, generator=_rng(12))
        got = _call(fn, [u])
        ref = gradient_smoothness(u)
        dx, dy, dz = u[:, :, 1:] - u[:, :, :-1], u[:, :, :, 1:] - u[:, :, :, :-1], u[..., 1:] - u[..., :-1]
        variants = [
            (
                "one axis",
                "All three spatial axes: differences along X (dim 2), Y (dim 3) and Z (dim 4).",
                dx.pow(2).mean(),
            ),
            (
                "channels",
                "Differences along the spatial axes (dims 2, 3, 4), not along the channel axis (dim 1).",
                (u[:, 1:] - u[:, :-1]).pow(2).mean(),
            ),
            (
                "abs",
                "Square the differences (an L2 penalty), not their absolute value.",
                (dx.abs().mean() + dy.abs().mean() + dz.abs().mean()) / 3,
            ),
            (
                "no /3",
                "Average the three axes' means (divide their sum by 3).",
                dx.pow(2).mean() + dy.pow(2).mean() + dz.pow(2).mean(),
            ),
            ("sum", "Mean over voxels, not sum.", (dx.pow(2).sum() + dy.pow(2).sum() + dz.pow(2).sum()) / 3),
        ]
        if isinstance(got, torch.Tensor) and got.numel() != 1:
            raise _Wrong(f"return one number (a 0-d tensor), got shape {tuple(got.shape)}")
        _compare(got, ref, variants, 1e-6, 1e-5, None)
        return "mean squared forward differences along X, Y and Z, averaged."

    return _report("check_gradient_smoothness", body, strict, quiet)


# --------------------------------------------------------------------------- 03 distillation
def check_upsample_field(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(u, size)``: a field ``(B, 3, x, y, z)`` in voxels of its grid -> the same field on a
    grid of ``size = (X, Y, Z)``: trilinear resize (``align_corners=False``) and channel c
    multiplied by ``size[c] / u.shape[2 + c]`` so it is in voxels of the new grid."""
    from ..models.blocks import upsample_field

    def body():
        u = _smooth_field((4, 3, 2), 1.0, seed=13)
        size = (8, 6, 6)  # ratios 2, 2, 3
        got = _call(fn, [u, size])
        ref = upsample_field(u, size)
        plain = F.interpolate(u, size=size, mode="trilinear", align_corners=False)
        ratio = torch.tensor([2.0, 2.0, 3.0]).view(1, 3, 1, 1, 1)
        variants = [
            (
                "not rescaled",
                "Displacements are in voxels of the grid they live on: on a finer grid the same motion "
                "spans more voxels, so multiply channel c by size[c] / old_size[c].",
                plain,
            ),
            (
                "reversed",
                "Axis order: channel c is scaled by the ratio of axis c (X, Y, Z); you used the reversed ratios.",
                plain * ratio.flip(1),
            ),
            ("divided", "Multiply by the size ratio (new / old), do not divide.", plain / ratio),
            (
                "align_corners",
                "Resize with align_corners=False, as the package's resize does.",
                F.interpolate(u, size=size, mode="trilinear", align_corners=True) * ratio,
            ),
            (
                "nearest",
                "Use trilinear interpolation, not nearest.",
                F.interpolate(u, size=size, mode="nearest") * ratio,
            ),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "trilinear resize, then channel c times size[c] / old_size[c]."

    return _report("check_upsample_field", body, strict, quiet)


def check_field_distillation(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(student_u, teacher_u, weights)``: fields ``(B, 6, X, Y, Z)`` (u_t0 and u_t1 stacked)
    and teacher-better weights ``(B, 1, X, Y, Z)`` -> the weighted mean Charbonnier
    (eps 1e-3) of ``student_u - teacher_u``: ``sum(w c) / sum(w)`` with ``w`` broadcast over
    the channels, and no gradient into the teacher (it is frozen: ``teacher_u.detach()``)."""
    from ..losses import charbonnier

    def body():
        g = _rng(14)
        s = torch.randn(2, 6, 5, 4, 3, generator=g)
        tch = torch.randn(2, 6, 5, 4, 3, generator=g)
        w = (torch.rand(2, 1, 5, 4, 3, generator=g) > 0.7).float()
        ref = charbonnier(s, tch, weights=w)
        c = torch.sqrt((s - tch) ** 2 + 1e-6)
        wb = w.expand_as(c)
        variants = [
            (
                "unweighted",
                "Weight each voxel by the teacher-better mask: distil only where the teacher is better.",
                c.mean(),
            ),
            (
                "numel",
                "Divide by the sum of the weights, not by the number of voxels (else a small mask makes the "
                "loss tiny).",
                (c * wb).sum() / c.numel(),
            ),
            (
                "mse",
                "Use the Charbonnier penalty sqrt(d² + ε²), not the squared difference.",
                ((s - tch) ** 2 * wb).sum() / wb.sum(),
            ),
        ]
        s_req = s.clone().requires_grad_(True)
        t_req = tch.clone().requires_grad_(True)
        try:
            got = fn(s_req, t_req, w.clone())
        except NotImplementedError:
            raise _NotAttempted() from None
        except Exception as exc:
            raise _Wrong(f"your function raised {type(exc).__name__}: {exc}") from None
        if got is None:
            raise _NotAttempted()
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise _Wrong("return one number as a 0-d torch tensor (so it can be backpropagated)")
        _compare(got, ref, variants, 1e-6, 1e-5, None)
        if not got.requires_grad:
            raise _Wrong("the loss has no gradient: keep it a torch expression of student_u (no .item(), no numpy).")
        got.backward()
        if t_req.grad is not None and float(t_req.grad.abs().sum()) > 0:
            raise _Wrong(
                "the value is right, but gradient flows into the teacher's fields: use teacher_u.detach() "
                "(the teacher is frozen; only the student learns)."
            )
        if s_req.grad is None or float(s_req.grad.abs().sum()) == 0:
            raise _Wrong("no gradient reaches the student's fields.")
        return "weighted mean Charbonnier, teacher detached."

    return _report("check_field_distillation", body, strict, quiet)


def check_fusion_weights(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(features, logits)``: ``features`` a list of L maps ``(N, C, X, Y, Z)`` on one grid,
    ``logits (N, L, X, Y, Z)`` -> ``sum_l softmax(logits, dim=1)[:, l] * features[l]``."""

    def body():
        g = _rng(15)
        feats = [torch.randn(2, 4, 5, 4, 3, generator=g) for _ in range(3)]
        logits = torch.randn(2, 3, 5, 4, 3, generator=g)

        def fuse(w):
            return sum(w[:, i : i + 1] * f for i, f in enumerate(feats))

        got = _call(fn, [feats, logits])
        ref = fuse(torch.softmax(logits, dim=1))
        variants = [
            (
                "no softmax",
                "Missing softmax normalisation: the weights must be positive and sum to 1 over the L "
                "scales at every voxel (torch.softmax(logits, dim=1)).",
                fuse(logits),
            ),
            (
                "sigmoid",
                "Sigmoid weights do not sum to 1 over the scales: use a softmax over dim 1.",
                fuse(torch.sigmoid(logits)),
            ),
            (
                "wrong dim",
                "Softmax over the scale axis (dim 1), not over a spatial axis.",
                fuse(torch.softmax(logits, dim=-1)),
            ),
            ("uniform", "Use the learned weights, not a plain average of the scales.", sum(feats) / len(feats)),
        ]
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "per-voxel softmax over the scales, weighted sum."

    return _report("check_fusion_weights", body, strict, quiet)


# --------------------------------------------------------------------------- 04 evaluation
def check_endpoint_error(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(u_pred, u_true)``: fields ``(B, 3, X, Y, Z)`` voxels -> the mean over voxels (and
    batch) of the Euclidean length of ``u_pred - u_true`` (a scalar, voxels)."""
    from ..metrics import endpoint_error

    def body():
        g = _rng(16)
        a, b = torch.randn(2, 3, 5, 4, 6, generator=g), torch.randn(2, 3, 5, 4, 6, generator=g)
        got = _call(fn, [a, b])
        d = a - b
        ref = torch.tensor(endpoint_error(a, b))
        variants = [
            (
                "mean abs",
                "Per voxel take the Euclidean length of the 3-vector, sqrt(dx² + dy² + dz²), not the mean "
                "absolute component.",
                d.abs().mean(),
            ),
            (
                "wrong axis",
                "The norm runs over the channel axis (dim 1: the three displacement components), not a spatial axis.",
                d.norm(dim=-1).mean(),
            ),
            (
                "squared",
                "Take the square root per voxel (a length in voxels), not the squared length.",
                d.pow(2).sum(1).mean(),
            ),
            (
                "rmse",
                "Mean of the per-voxel lengths, not the root of the mean squared length.",
                d.pow(2).sum(1).mean().sqrt(),
            ),
            ("sum", "Average over voxels, not sum.", d.norm(dim=1).sum()),
        ]
        if isinstance(got, torch.Tensor) and got.numel() != 1:
            raise _Wrong(f"return one number (the mean), got shape {tuple(got.shape)}")
        _compare(got, ref, variants, 1e-5, 1e-5, None)
        return "mean Euclidean end-point error."

    return _report("check_endpoint_error", body, strict, quiet)


def check_folding_percent(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(u)``: one field as a numpy array ``(3, X, Y, Z)`` voxels -> the percentage (0-100) of
    voxels where ``det(I + ∇u) <= 0`` (``np.gradient`` central differences, one-sided at the border)."""
    from ..metrics import folding_percent

    def body():
        u = (_smooth_field((12, 10, 8), 6.0, seed=17)[0]).numpy()
        got = _call(fn, [u])
        ref = folding_percent(u)
        grads = np.stack([np.stack(np.gradient(u[c]), 0) for c in range(3)])  # [c, a] = d u_c / d x_a
        jac = np.moveaxis(grads, (0, 1), (-2, -1))
        det_plain = np.linalg.det(jac)
        det_id = np.linalg.det(jac + np.eye(3))
        variants = [
            (
                "no identity",
                "The map is x -> x + u(x): its Jacobian is I + ∇u; add the identity before the determinant.",
                100.0 * (det_plain <= 0).mean(),
            ),
            ("fraction", "Return a percentage (0-100), not a fraction.", (det_id <= 0).mean()),
            (
                "positive",
                "Folding is where det <= 0 (the map turns space inside out), not where it is positive.",
                100.0 * (det_id > 0).mean(),
            ),
        ]
        gv = _as_tensor(got)
        if gv.numel() != 1:
            raise _Wrong(f"return one number (a percentage), got shape {tuple(gv.shape)}")
        if abs(ref) < 1e-9:  # pragma: no cover - the test field is chosen to fold
            raise RuntimeError("test field does not fold")
        _compare(got, torch.tensor(ref), variants, 1e-3, 1e-4, None)
        return f"{ref:.2f} % of the test field's voxels fold."

    return _report("check_folding_percent", body, strict, quiet)


# --------------------------------------------------------------------------- 05 visualisers
def check_window_level(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(window, level)`` -> ``(vmin, vmax)`` of the display range ``level ± window / 2``."""

    def body():
        for window, level in ((0.4, 0.5), (1600.0, -600.0)):
            got = _call(fn, [window, level])
            ref = (level - window / 2, level + window / 2)
            variants = [
                (
                    "full window",
                    "The window is the full width of the range: level ± window / 2, not ± window.",
                    (level - window, level + window),
                ),
                (
                    "swapped args",
                    "The first argument is the window (width), the second the level (centre).",
                    (window - level / 2, window + level / 2),
                ),
                ("order", "Return (vmin, vmax): the lower bound first.", (level + window / 2, level - window / 2)),
            ]
            _compare(got, ref, variants, 1e-9, 1e-9, 2, names=["vmin", "vmax"])
        return "level ± window / 2."

    return _report("check_window_level", body, strict, quiet)


def check_nearest_frame(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(times, t)``: a patient's ``times (T,)`` (NaN outside the input frames) and a float
    ``t`` -> the index (int) of the frame whose time is nearest to ``t``."""

    def body():
        times = np.array([np.nan, np.nan, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, np.nan, np.nan])
        cases = [(0.33, 4), (0.0, 2), (0.97, 7), (0.49, 4)]
        for t, want in cases:
            got = _call(fn, [times, t])
            if isinstance(got, (float, np.floating)) and float(got) != int(got):
                raise _Wrong(f"Return the frame *index* (an int), not its time (you returned {got!r}).")
            try:
                k = int(got)
            except (TypeError, ValueError):
                raise _Wrong(f"return one integer index, got {got!r}") from None
            if k == want:
                continue
            if k == 0 and np.isnan(times[0]):
                raise _Wrong(
                    "frames outside the inputs have NaN times and np.argmin returns the first NaN: use "
                    "np.nanargmin(np.abs(times - t))."
                )
            if k == int(round(t * (len(times) - 1))):
                raise _Wrong(
                    "Use the times array: only frames i0..i1 have a t (the others are NaN), so "
                    "round(t * (T - 1)) picks the wrong frame."
                )
            raise _Wrong(f"for t = {t} the nearest frame is {want} (time {times[want]}), you returned {k}.")
        return "np.nanargmin(|times - t|)."

    return _report("check_nearest_frame", body, strict, quiet)


# --------------------------------------------------------------------------- 06 real data
def _ref_times(n, i0, i1):
    idx = np.arange(n, dtype=np.float64)
    t = (idx - i0) / (i1 - i0)
    t[(idx < i0) | (idx > i1)] = np.nan
    return t


def check_surrogate_times(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(n_frames, ed, es)``: ``ed``, ``es`` 1-based as in ACDC's ``Info.cfg`` -> ``times (T,)``:
    ``(i - i0) / (i1 - i0)`` with ``i0 = ed - 1``, ``i1 = es - 1`` 0-based, NaN outside [i0, i1]."""

    def body():
        for n, ed, es in ((12, 3, 9), (20, 1, 8)):
            got = _call(fn, [n, ed, es])
            i0, i1 = ed - 1, es - 1
            ref = _ref_times(n, i0, i1)
            idx = np.arange(n, dtype=np.float64)
            no_nan = (idx - i0) / (i1 - i0)
            variants = [
                (
                    "1-based",
                    "Info.cfg counts frames from 1: i0 = ED - 1 and i1 = ES - 1 in Python.",
                    _ref_times(n, ed, es),
                ),
                (
                    "reversed",
                    "The t convention is reversed: t = 0 at ED (i0) and t = 1 at ES (i1).",
                    1 - _ref_times(n, i0, i1),
                ),
                ("no NaN", "Frames outside [ED, ES] have no timestamp between the inputs: set them to NaN.", no_nan),
                (
                    "per n",
                    "Divide by the number of frames between the inputs, (i1 - i0), not by the frame count.",
                    np.where(np.isnan(ref), np.nan, (idx - i0) / n),
                ),
            ]
            _compare(got, ref, variants, 1e-6, 1e-6, None)
        return "t_i = (i - i0) / (i1 - i0) with 0-based i0 = ED - 1, NaN outside."

    return _report("check_surrogate_times", body, strict, quiet)


def check_lung_phase_times(fn: Callable, strict: bool = False, quiet: bool = False) -> CheckResult:
    """``fn(phases, input_phases)``: the respiratory phases of a 4D-CT in %, e.g. ``[0, 10, ..., 90]``,
    and the two input phases, e.g. ``(0, 50)`` -> ``t`` of every phase, ``(p - p0) / (p1 - p0)``,
    NaN for phases outside ``[p0, p1]``."""

    def body():
        for phases, inputs in (
            ([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], (0, 50)),
            ([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], (20, 70)),
        ):
            got = _call(fn, [list(phases), tuple(inputs)])
            p = np.asarray(phases, dtype=np.float64)
            p0, p1 = inputs
            raw = (p - p0) / (p1 - p0)
            ref = np.where((p < p0) | (p > p1), np.nan, raw)
            variants = [
                (
                    "percent",
                    "t is relative to the two input phases: (p - p0) / (p1 - p0), so the 50 % phase is t = 1, not 0.5.",
                    np.where((p < p0) | (p > p1), np.nan, p / 100.0),
                ),
                (
                    "no NaN",
                    "Phases after the second input (exhale back to inhale) are not between the inputs: NaN.",
                    raw,
                ),
                ("reversed", "The t convention is reversed: t = 0 at the first input phase.", 1 - ref),
            ]
            _compare(got, ref, variants, 1e-6, 1e-6, None)
        return "t = (p - p0) / (p1 - p0), NaN outside the inputs (0 %..50 % -> 0, 0.2, ..., 1)."

    return _report("check_lung_phase_times", body, strict, quiet)


def all_checks() -> dict[str, Callable]:
    """``{name: check}`` of every ``check_*`` of this module."""
    return {name: globals()[name] for name in __all__ if name.startswith("check_")}
