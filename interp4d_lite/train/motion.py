"""Motion over time: what a method's displacement does along t, next to a reference.

The reference of a phantom is its true motion. A real scan has none, so the reference is the
registration of both inputs to each real frame between them
(:func:`interp4d_lite.models.teacher.register_to_frame`): privileged (it sees every frame, as
the teacher does) and only as good as that registration, so everything derived from it is
labelled :data:`REGISTERED_REFERENCE`, never "truth".

* :func:`reference_fields` / :func:`reference_label` / :func:`with_reference_fields`: the
  reference fields of a patient, what to call them, and the patient carrying them (so the
  evaluation's field metrics and its linear-motion oracle run on real scans too);
* :func:`fields_over_time`: a method's ``u_t0`` at every frame from ``i0`` to ``i1``;
* :func:`motion_region` and :func:`displacement_curves`: where to look (the voxels that move
  most) and the displacement along t there, projected on the reference's ED -> ES direction;
* :func:`motion_over_time`: all of it for a set of methods, as a :class:`MotionCurves`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..metrics import displacement_curves

__all__ = [
    "TRUE_REFERENCE",
    "REGISTERED_REFERENCE",
    "LINEAR_MOTION",
    "reference_label",
    "reference_fields",
    "with_reference_fields",
    "fields_over_time",
    "motion_region",
    "displacement_curves",
    "MotionCurves",
    "motion_over_time",
]

#: the name of the reference on a phantom
TRUE_REFERENCE = "true motion"
#: the name of the reference on a real scan (no true fields)
REGISTERED_REFERENCE = "registration to each real frame"
#: the name of the reference's endpoint displacement scaled by t (what linear motion assumes)
LINEAR_MOTION = "linear in t"


def reference_label(patient) -> str:
    """:data:`TRUE_REFERENCE` for a patient with true fields, else :data:`REGISTERED_REFERENCE`
    (also for the copy :func:`with_reference_fields` makes, which carries the registration)."""
    named = getattr(patient, "reference", None)
    if named is not None:
        return named
    return TRUE_REFERENCE if getattr(patient, "u_t0", None) is not None else REGISTERED_REFERENCE


def reference_fields(patient, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """``(u_t0, u_t1)``, each ``(K, 3, X, Y, Z)`` float32 voxels for the frames ``i0 .. i1``
    (``K = i1 - i0 + 1``): the true fields when the patient has them, else ``I0`` and ``I1``
    registered to each real frame (:func:`~interp4d_lite.models.teacher.register_to_frame`
    with its defaults, all frames in one batch)."""
    if getattr(patient, "u_t0", None) is not None:
        return np.asarray(patient.u_t0, np.float32), np.asarray(patient.u_t1, np.float32)
    import torch

    from ..device import get_device
    from ..models.teacher import register_to_frame

    device = get_device(device)
    f = torch.as_tensor(np.asarray(patient.frames[patient.i0 : patient.i1 + 1], np.float32), device=device)[:, None]
    u_t0, u_t1 = register_to_frame(f[:1], f[-1:], f)
    return u_t0.cpu().numpy(), u_t1.cpu().numpy()


def with_reference_fields(patient, device="cpu"):
    """The patient itself when it has true fields, else a copy carrying the reference fields
    of :func:`reference_fields` as ``u_t0``/``u_t1``: the evaluation then scores fields
    (``epe_moving``) and runs ``"linear_motion_oracle"`` / ``"true_fields"`` against the
    registration; :func:`reference_label` of the copy names it so."""
    if getattr(patient, "u_t0", None) is not None:
        return patient
    u_t0, u_t1 = reference_fields(patient, device=device)
    carried = dataclasses.replace(patient, u_t0=u_t0, u_t1=u_t1)
    carried.reference = REGISTERED_REFERENCE  # what its u_t0, u_t1 are (reference_label reads it)
    return carried


def fields_over_time(method, patient, device="cpu") -> np.ndarray:
    """``u_t0`` of ``method`` (anything :func:`~interp4d_lite.train.evaluate.predict_patient`
    runs) at every frame from ``i0`` to ``i1`` (both inputs included): ``(K, 3, X, Y, Z)`` voxels."""
    from .evaluate import predict_patient

    frames = list(range(patient.i0, patient.i1 + 1))
    pred = predict_patient(method, patient, device=device, frames=frames)
    return np.stack([np.asarray(pred[i]["u_t0"], np.float32) for i in frames])


def motion_region(u_end, fraction: float = 0.02) -> np.ndarray:
    """The voxels that move most: a boolean ``(X, Y, Z)`` mask of the ``fraction`` of voxels
    with the largest ``|u_end|`` (``u_end (3, X, Y, Z)``, e.g. the reference at ``t = 1``);
    at least one voxel."""
    mag = np.linalg.norm(np.asarray(u_end, np.float32), axis=0)
    n = max(1, int(round(fraction * mag.size)))
    cut = np.partition(mag.ravel(), mag.size - n)[mag.size - n]
    return mag >= cut


@dataclass
class MotionCurves:
    """The displacement along t of several methods at one region of one patient.

    ``times (K,)`` the frames' t from 0 to 1; ``curves`` name -> ``(K,)`` displacement along
    the reference's ED -> ES direction (mm), mean over ``region``; ``reference`` the name of
    the reference curve (:data:`TRUE_REFERENCE` or :data:`REGISTERED_REFERENCE`) and
    :data:`LINEAR_MOTION` its endpoint scaled by t; ``fields`` name -> ``(K, 3, X, Y, Z)``
    voxels (reference included) for widgets; ``u_end`` the reference at t = 1."""

    patient_id: str
    times: np.ndarray
    curves: dict
    reference: str
    region: np.ndarray
    fields: dict
    u_end: np.ndarray
    spacing: tuple
    background: np.ndarray

    def share_at(self, name: str, t: float = 0.5) -> float:
        """The displacement of curve ``name`` at ``t`` (linear between frames) as a share of
        the reference's displacement at ``t = 1``: 0.5 for linear motion at t = 0.5."""
        end = float(self.curves[self.reference][-1])
        return float(np.interp(t, self.times, self.curves[name])) / end if abs(end) > 1e-9 else float("nan")

    def gap(self, name: str) -> float:
        """The mean absolute difference (mm) between curve ``name`` and the reference over the
        frames strictly between the inputs."""
        inner = slice(1, len(self.times) - 1)
        return float(np.abs(self.curves[name][inner] - self.curves[self.reference][inner]).mean())


def motion_over_time(
    methods: Mapping[str, object], patient, device="cpu", fraction: float = 0.02, reference=None
) -> MotionCurves:
    """The displacement along t at the voxels that move most (:func:`motion_region` of the
    reference at t = 1), for the reference (:func:`reference_fields`, or the given
    ``(u_t0, u_t1)``), :data:`LINEAR_MOTION` (the reference's endpoint field scaled by t) and
    each of ``methods`` (name -> method, see :func:`fields_over_time`)."""
    times = np.asarray(patient.times[patient.i0 : patient.i1 + 1], np.float32)
    ref_u_t0 = reference_fields(patient, device=device)[0] if reference is None else np.asarray(reference[0])
    name = reference_label(patient)
    fields = {name: ref_u_t0, LINEAR_MOTION: times[:, None, None, None, None] * ref_u_t0[-1:]}
    for label, method in methods.items():
        fields[label] = fields_over_time(method, patient, device=device)
    region = motion_region(ref_u_t0[-1], fraction)
    curves = displacement_curves(fields, ref_u_t0[-1], region, patient.spacing)
    return MotionCurves(
        patient_id=patient.patient_id,
        times=times,
        curves=curves,
        reference=name,
        region=region,
        fields=fields,
        u_end=ref_u_t0[-1],
        spacing=tuple(float(s) for s in patient.spacing),
        background=np.asarray(patient.frames[patient.i0], np.float32),
    )
