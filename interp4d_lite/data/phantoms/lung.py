"""The lung phantom: a breathing thorax in CT (HU), phases 0 % .. 90 %.

X = left->right, Y = posterior->anterior, Z = inferior->superior (RAS),
default spacing (2.5, 2.5, 2.5) mm, 10 phases; phase 0 (0 %, end-inhale) is ``i0``
and phase 5 (50 %, end-exhale) is ``i1``. Superior-inferior motion ``b = 1 -
cos^{2n}(pi tau)`` (``n ~ 2.5``) growing from the lung apex to the diaphragm, plus an
anterior-posterior component with a phase lag (hysteresis: the inhale path differs
from the exhale path). ``frames`` are **HU** (float32); ``hu_to_unit`` gives the
loader's [0, 1] scale (clip [-1400, 200], then divide by 1600).

Anatomies (:data:`LUNG_ANATOMIES`): ``a`` (the default thorax), ``b`` (a second family, for tests
away from the training data) and ``chest`` (``a`` with ribs, about 1 cm of bone in the chest
wall every ~20 mm, open at the front, and an airway tree: trachea, main bronchi and three
divisions, air inside 1.5 mm soft-tissue walls, moving with the lungs). The ribs sit where the
phantom's motion field still reaches the body wall, so the lower ones move a little with the
breathing, which a real chest wall does less; their true fields are exact all the same.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .common import (
    HU_WINDOW,
    Phantom4D,
    _check_common,
    _ellipsoid_inside,
    _finish,
    _generator_params,
    _jitter,
    _sample,
    _soft,
    _texture,
)


def lung_breathing(tau, n_exp, lag):
    """Superior-inferior amount ``b`` and anterior-posterior amount ``a`` at cycle phase ``tau``
    (0 = end-inhale, 0.5 = end-exhale): ``b = 1 - cos^{2n}(pi tau)``; ``a`` is the same curve
    delayed by ``lag`` (fraction of a cycle), minus its value at tau = 0 (hysteresis loop)."""
    tau = np.asarray(tau, dtype=np.float64)
    b = 1.0 - (np.cos(np.pi * tau) ** 2) ** n_exp
    a = (1.0 - (np.cos(np.pi * (tau - lag)) ** 2) ** n_exp) - (1.0 - (np.cos(np.pi * lag) ** 2) ** n_exp)
    return b, a


class _LungMotion:
    """Backward map: AP step (depends on x, z), then SI step (depends on x, y, piecewise linear in z)."""

    def __init__(self, g):
        self.__dict__.update(g)

    def _profile(self, z):
        # 0 above the lung apex, 1 at and below the diaphragm level (motion grows toward the diaphragm)
        return np.clip((self.z_top - z) / (self.z_top - self.z_dia), 0.0, 1.0)

    def _w_x(self, x):
        return np.exp(-(((np.abs(x) - self.x_lung) / (1.3 * self.r_lung_x)) ** 2))

    def _w_xy(self, x, y):
        return self._w_x(x) * np.exp(-(((y - self.y_lung) / (1.2 * self.r_lung_y)) ** 4))

    def forward(self, p, b, a):
        x, y, z = p
        y = y + self.ap * a * self._w_x(x) * self._profile(z)  # AP (anterior wall sinks at exhale)
        c = self.si * b * self._w_xy(x, y)  # SI shift at/below the diaphragm, mm
        z = z - c * self._profile(z)  # came from lower down (inhale)
        return np.stack([x, y, z])

    def inverse(self, q, b, a):
        x, y, z_ref = q
        c = self.si * b * self._w_xy(x, y)
        L = self.z_top - self.z_dia
        z_mid = (z_ref + c * self.z_top / L) / (1.0 + c / L)
        z = np.where(z_ref >= self.z_top, z_ref, np.where(z_ref <= self.z_dia - c, z_ref + c, z_mid))
        y = y - self.ap * a * self._w_x(x) * self._profile(z)
        return np.stack([x, y, z])


#: lung anatomies: "a" is the default thorax; "b" a second family for testing away from the
#: training data (flatter, wider body, larger lungs with a higher, steeper diaphragm dome, a
#: larger tumour, coarser parenchyma texture, a different breathing exponent and less
#: anterior-posterior motion). Factors of the body half-axes / field of view.
LUNG_ANATOMIES = {
    "a": dict(
        body=(0.88, 0.62),
        lung_x=0.45,
        r_lung=(0.36, 0.72),
        z_top=0.70,
        z_dia=-0.45,
        dome=0.22,
        tumour=0.08,
        texture=1.5,
        n_exp=2.5,
        ap=1.0,
    ),
    "b": dict(
        body=(0.94, 0.52),
        lung_x=0.50,
        r_lung=(0.40, 0.80),
        z_top=0.80,
        z_dia=-0.30,
        dome=0.32,
        tumour=0.12,
        texture=2.2,
        n_exp=3.0,
        ap=0.6,
    ),
}
#: "chest": anatomy "a" closer to a chest CT, with ribs (bone, in the chest wall) and an airway
#: tree (trachea, main, lobar and segmental bronchi: air with soft-tissue walls, moving with the
#: lungs); ``scripts/pretrain.py --lung-anatomy chest`` trains on it (the shipped student keeps "a",
#: which scored better on a held-out real chest). "a" and "b" stay as they were, so the
#: benchmarks' phantom numbers compare across versions.
LUNG_ANATOMIES["chest"] = dict(LUNG_ANATOMIES["a"], ribs=True, airways=True)

RIB_HU, AIRWAY_WALL_HU = 700.0, -50.0


def _segment_distance(p, a, b):
    """Distance (mm) from points ``p (3, ...)`` to the segment ``a -> b`` (mm)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = b - a
    rel = [p[i] - a[i] for i in range(3)]
    s = np.clip(sum(rel[i] * d[i] for i in range(3)) / max(float(d @ d), 1e-9), 0.0, 1.0)
    return np.sqrt(sum((rel[i] - s * d[i]) ** 2 for i in range(3)))


def airway_tree(rng, geo, top_z, generations: int = 3) -> list:
    """Segments ``(start, end, radius)`` in mm of a branching airway tree: the trachea down the
    midline from ``top_z`` to the carina, two main bronchi toward the lungs, then
    ``generations`` binary divisions (each child 0.7x as long and 0.75x as wide, turned about
    30-45 degrees from its parent, with jitter), so the lumina reach the lungs' bulk."""
    carina = np.array([0.0, geo["y_lung"] + 0.1 * geo["r_lung_y"], geo["z_dia"] + 0.62 * (geo["z_top"] - geo["z_dia"])])
    segs = [(np.array([0.0, carina[1], top_z]), carina, 7.0)]
    tips = []
    for sgn in (-1.0, 1.0):
        end = carina + np.array([sgn * 0.55 * geo["x_lung"], 0.0, -0.12 * (geo["z_top"] - geo["z_dia"])])
        segs.append((carina, end, 5.0))
        tips.append((end, end - carina, 5.0))
    for _ in range(generations):
        new = []
        for start, direction, radius in tips:
            length = 0.7 * np.linalg.norm(direction)
            u = direction / (np.linalg.norm(direction) + 1e-9)
            for turn in (-1.0, 1.0):
                axis = rng.normal(size=3)
                axis -= (axis @ u) * u
                axis /= np.linalg.norm(axis) + 1e-9
                angle = np.deg2rad(rng.uniform(30.0, 45.0)) * turn
                v = u * np.cos(angle) + axis * np.sin(angle)
                v[2] = min(v[2], 0.2)  # branches run sideways or down, into the lungs
                v /= np.linalg.norm(v) + 1e-9
                end = start + length * v
                segs.append((start, end, 0.75 * radius))
                new.append((end, end - start, 0.75 * radius))
        tips = new
    return segs


def make_lung_phantom(
    shape=(128, 128, 128),
    spacing=(2.5, 2.5, 2.5),
    n_frames=10,
    noise=0.01,
    amplitude=1.0,
    seed=0,
    patient_id="lung001",
    anatomy: str = "a",
) -> Phantom4D:
    """A breathing thorax, phases 0 %..90 %, frames in HU; see the module docstring.
    ``noise`` is a fraction of the HU window (0.01 -> 16 HU); ``anatomy``: a key of
    :data:`LUNG_ANATOMIES` ("b" is a second family, for tests away from the training data)."""
    if anatomy not in LUNG_ANATOMIES:
        raise ValueError(f"lung phantom: anatomy must be one of {sorted(LUNG_ANATOMIES)}, got {anatomy!r}")
    an = LUNG_ANATOMIES[anatomy]
    shape, spacing, n_frames, grid = _check_common("lung", shape, spacing, n_frames, noise, amplitude)
    if n_frames % 2:
        raise ValueError(f"lung phantom: n_frames must be even (phase 50 % is frame n/2), got {n_frames}")
    rng = np.random.default_rng(seed)
    Hx, Hy, Hz = (float(h) for h in grid.half)
    bx, by = an["body"][0] * Hx, an["body"][1] * Hy  # body ellipse (mm)
    geo = dict(
        x_lung=an["lung_x"] * bx,
        y_lung=0.02 * by,
        r_lung_x=_jitter(rng, an["r_lung"][0] * bx, 0.05),
        r_lung_y=_jitter(rng, an["r_lung"][1] * by, 0.05),
        z_top=an["z_top"] * Hz,
        z_dia=an["z_dia"] * Hz,
        dome=_jitter(rng, an["dome"] * Hz, 0.1),
        si=_jitter(rng, min(15.0, 0.12 * 2 * Hz)) * amplitude,  # diaphragm excursion, mm
        ap=_jitter(rng, min(2.5, 0.025 * 2 * Hy)) * amplitude * an["ap"],  # anterior-posterior, mm
    )
    n_exp = _jitter(rng, an["n_exp"])
    lag = _jitter(rng, 0.08)
    motion = _LungMotion(geo)
    sp = grid.spacing
    tex_body = _texture(rng, shape, an["texture"], 20.0)  # HU
    tex_paren = _texture(rng, shape, an["texture"], 60.0)  # parenchyma: small vessels, septa (visible motion)
    vessel_noise = _texture(rng, shape, an["texture"], 1.0)
    vessels = (650.0 * expit((vessel_noise - 1.4) / 0.35)).astype(np.float32)  # bright branching blobs
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    tumour = (
        side * geo["x_lung"],
        geo["y_lung"] + 0.15 * geo["r_lung_y"],
        geo["z_dia"] + geo["dome"] + 0.25 * (geo["z_top"] - geo["z_dia"]),
    )
    r_tumour = _jitter(rng, an["tumour"] * min(Hx, Hz))
    # ribs and airways draw from a generator of their own: anatomies without them are unchanged
    extra = np.random.default_rng([int(seed), 0xC4E57])
    airways = airway_tree(extra, geo, top_z=Hz) if an.get("airways") else []
    # ribs: bone arcs in the chest wall every ~20 mm, sloping down toward the front, open at the sternum
    rib_z = np.arange(geo["z_dia"] - 0.1 * Hz, geo["z_top"] + 0.1 * Hz, _jitter(extra, 20.0)) if an.get("ribs") else []

    def render(ref_mm):
        vox = grid.to_voxels(ref_mm)
        x, y, z = ref_mm
        body = _soft(_ellipsoid_inside(ref_mm, (0.0, 0.0, 0.0), (bx, by, np.inf), sp))
        lungs = np.zeros(x.shape, np.float64)
        for sgn in (-1.0, 1.0):
            ell = _soft(
                _ellipsoid_inside(
                    ref_mm,
                    (sgn * geo["x_lung"], geo["y_lung"], geo["z_dia"]),
                    (geo["r_lung_x"], geo["r_lung_y"], geo["z_top"] - geo["z_dia"]),
                    sp,
                )
            )
            # diaphragm dome under each lung: the lung ends above z_d(x, y)
            rr = ((x - sgn * geo["x_lung"]) / geo["r_lung_x"]) ** 2 + ((y - geo["y_lung"]) / geo["r_lung_y"]) ** 2
            z_d = geo["z_dia"] + geo["dome"] * np.exp(-1.5 * rr)
            lungs = lungs + ell * _soft((z - z_d) / sp[2])
        spine = _soft(_ellipsoid_inside(ref_mm, (0.0, -0.75 * by, 0.0), (0.12 * bx, 0.14 * by, np.inf), sp))
        tum = _soft(_ellipsoid_inside(ref_mm, tumour, (r_tumour,) * 3, sp))
        soft_tissue = 40.0 + _sample(tex_body, vox)
        hu = -1000.0 + body * (soft_tissue + 1000.0)  # air outside, soft tissue in body
        lung_hu = -850.0 + _sample(tex_paren, vox) + _sample(vessels, vox)
        hu = hu + lungs * (lung_hu - hu)
        hu = hu + tum * (20.0 + 0.5 * _sample(tex_body, vox) - hu)  # tumour moves with the lung
        hu = hu + spine * (350.0 - hu)
        if len(rib_z):
            rho = np.sqrt((x / bx) ** 2 + (y / by) ** 2)  # 1 on the body surface
            wall = _soft((4.5 - np.abs(rho - 0.9) * min(bx, by)) / sp[0]) * _soft((0.55 * by - y) / sp[1])
            slope = z + 0.18 * (y + by)  # ribs run down toward the front
            near = np.min(np.abs(slope[None] - np.asarray(rib_z).reshape(-1, *([1] * slope.ndim))), axis=0)
            ribs = wall * _soft((5.0 - near) / sp[2])  # about 1 cm thick
            hu = hu + ribs * (RIB_HU - hu)
        if airways:
            dist = np.min(np.stack([_segment_distance(ref_mm, a, b) - r for a, b, r in airways]), axis=0)
            inside = body * _soft(-dist / min(sp))  # the lumen: air
            wall_ = body * _soft((1.5 - dist) / min(sp)) - inside  # a 1.5 mm soft-tissue wall around it
            hu = hu + wall_ * (AIRWAY_WALL_HU - hu)
            hu = hu + inside * (-1000.0 - hu)
        return hu.astype(np.float32)

    tau = np.arange(n_frames) / n_frames
    b_all, a_all = lung_breathing(tau, n_exp, lag)
    i1 = n_frames // 2
    frames = np.empty((n_frames, *shape), np.float32)
    u_t0 = np.empty((i1 + 1, 3, *shape), np.float32)
    u_t1 = np.empty((i1 + 1, 3, *shape), np.float32)
    for i in range(n_frames):
        ref = motion.forward(grid.mm, b_all[i], a_all[i]) if i > 0 else grid.mm
        frames[i] = render(ref)
        if i <= i1:
            u_t0[i] = grid.field(ref)
            u_t1[i] = grid.field(motion.inverse(ref, b_all[i1], a_all[i1]))
    params = dict(
        kind="lung",
        anatomy=anatomy,
        **_generator_params(patient_id, shape, spacing, n_frames, noise, amplitude, seed),
        phases=[int(round(100 * k / n_frames)) for k in range(n_frames)],
        cos_exponent_n=n_exp,
        ap_lag=lag,
        si_amount=[float(v) for v in b_all],
        ap_amount=[float(v) for v in a_all],
        tumour_mm=[float(v) for v in tumour],
        tumour_radius_mm=float(r_tumour),
        ribs_mm=[float(v) for v in rib_z],
        airway_segments=len(airways),
        geometry_mm={k: float(v) for k, v in geo.items()},
    )
    return _finish(
        "lung",
        patient_id,
        frames,
        grid,
        0,
        i1,
        u_t0,
        u_t1,
        noise * (HU_WINDOW[1] - HU_WINDOW[0]),
        rng,
        params,
        clip=None,
    )
