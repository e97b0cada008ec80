"""The cardiac phantom: a short-axis cine MRI of a beating heart in a thorax (its anatomy and
the generator; the motion is in :mod:`.cardiac_motion`).

bSSFP-like contrast: blood > fat > liver/muscle > myocardium >> lung/air. X, Y in-plane, Z = the LV long axis
(base superior, apex inferior); default 128x128x10 voxels of (1.5, 1.5, 8) mm (ACDC-like:
thick slices, the ventricles filling the stack from the atria at the top to the apex near
the bottom), 25 frames per cycle (>= 6 accepted for quick CPU tutorials). The anatomy has
adult size at an in-plane field of view of 220 mm and scales with the grid's field of view
(``CARDIAC_REFERENCE_FOV``), so a small grid shows the same picture coarser. Thorax: skin and
subcutaneous fat, chest-wall muscle, ribs and sternum, lungs with faint vessels, vertebra,
spinal canal and paraspinal muscles, descending aorta, oesophagus, liver and stomach in the
apical slices. Heart: LV cavity (bright blood, trabeculae, two papillary muscles), LV
myocardium (dark ring), the RV as a crescent of blood with a thin free wall, fat in the
atrioventricular and interventricular grooves, the atria above the base plane. ED = frame 0,
ES = ``round(es_frac * n_frames)`` with ``es_frac = 0.34 s * sqrt(RR) / RR`` for a heart rate
of 55-95 bpm (33-43 % of the cycle). Contraction ``s`` (0 at ED, 1 at ES) follows ``1 - (1 -
u)^p`` over ejection (``p ~ 2.2 +- 10 %``: fast early) and, over filling, rapid early filling,
diastasis and the atrial kick (:func:`cardiac_contraction`). Motion about the LV axis
(:class:`.cardiac_motion._CardiacMotion`): radial contraction with the endocardium moving 18-36 % inward and
the wall thickening 30-50 % (its in-plane area grows as the ventricle shortens: volume about
constant), the RV crescent emptying, longitudinal shortening of 10-17 % (the base plane
descends toward the fixed apex), twist (apex ~+7 deg, base ~-3 deg at ES); the motion tapers
to exactly zero 22 mm (adult size) outside the heart, so the rest of the thorax is still.
Per patient (seed): LV size, wall thickness, RV size, ejection, shortening, twist, heart rate,
the heart's position and in-plane orientation, body size and subcutaneous fat. A smooth
static multiplicative coil bias field (``bias``) and Rician noise (``noise``: the std of each
Gaussian channel, ``sqrt((s + n1)^2 + n2^2)``; air is not 0 but ``noise * sqrt(pi / 2)``).
``frames`` in [0, 1]; ``labels`` the LV / myocardium / RV label map of every frame
(:data:`CARDIAC_LABELS`, ACDC's values) and ``params["ejection_fraction"]`` from it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .cardiac_motion import LV_SHAPE_POWER, _angle, _CardiacMotion, cardiac_contraction
from .common import Phantom4D, _bias_field, _check_common, _finish, _generator_params, _jitter, _sample, _soft, _texture

#: SSFP-like intensities of the cardiac phantom's tissues, before the coil bias field and the
#: noise (blood > fat > liver/muscle > myocardium >> lung/air, as in a bSSFP cine)
SSFP_INTENSITY = {
    "air": 0.0,
    "lung": 0.035,
    "lung_vessel": 0.20,
    "blood_lv": 0.92,
    "blood_rv": 0.88,
    "aorta": 0.90,
    "fat": 0.70,
    "mediastinum": 0.50,
    "liver": 0.34,
    "stomach": 0.55,
    "muscle": 0.27,
    "myocardium": 0.20,
    "marrow": 0.46,
    "cortex": 0.06,
    "csf": 0.82,
}
#: label values of ``Phantom4D.labels`` (those of the ACDC ground truth)
CARDIAC_LABELS = {"background": 0, "rv": 1, "myocardium": 2, "lv": 3}
#: field of view (in-plane, through-plane, mm) at which the cardiac anatomy has adult size;
#: the anatomy scales with the grid's field of view, so a small grid shows the same picture coarser
CARDIAC_REFERENCE_FOV = (220.0, 80.0)


def _inside(terms):
    """Signed distance (voxels, > 0 inside) to ``f = sum_a |d_a / r_a|^e_a < 1``, first order:
    ``(1 - f) / |grad_vox f|``; ``terms``: ``(d_mm, radius_mm, spacing_mm[, e_a = 2])`` per
    coordinate (a Cartesian offset, a radius, a height: whatever the coordinate's voxel step is;
    ``e_a > 2`` flattens the shape along that coordinate)."""
    f, grad2 = 0.0, 0.0
    for d, r, sp, *e in terms:
        q = np.abs(d / r)
        if not e or e[0] == 2:
            f, grad2 = f + q * q, grad2 + (2.0 * q * sp / r) ** 2
        else:
            qe = q ** (e[0] - 1.0)
            f, grad2 = f + qe * q, grad2 + (e[0] * qe * sp / r) ** 2
    return (1.0 - f) / (np.sqrt(grad2) + 1e-6)


def _cardiac_geometry(rng, grid, amplitude):
    """Per-patient anatomy and motion (mm, grid coordinates), drawn from ``rng``."""
    zoom = float(min(2 * grid.half[0], 2 * grid.half[1]) / CARDIAC_REFERENCE_FOV[0])
    zz = float(2 * grid.half[2] / CARDIAC_REFERENCE_FOV[1])
    fov = 2.0 * grid.half
    a_en = _jitter(rng, 25.0, 0.12) * zoom  # ED LV cavity radius (diameter ~50 mm)
    wall = _jitter(rng, 10.0, 0.15) * zoom  # ED wall thickness
    psi = float(np.deg2rad(rng.uniform(-15.0, 15.0)))  # in-plane orientation of the thorax
    body = _jitter(rng, 1.0, 0.12)  # body size
    l_ep = _jitter(rng, 0.80, 0.05) * fov[2]  # base -> epicardial apex
    ell = rng.uniform(0.10, 0.17)  # longitudinal shortening at ES
    g = dict(
        zoom=zoom,
        zoom_z=zz,
        psi=psi,
        body_scale=body,
        cx=float(rng.uniform(-0.04, 0.04) * fov[0]),
        cy=float(rng.uniform(-0.04, 0.04) * fov[1]),
        a_en=a_en,
        a_ep=a_en + wall,
        d_rv=_jitter(rng, 24.0, 0.15) * zoom,
        t_rv=3.5 * zoom,
        t_rv_z=3.5 * zz,
        theta_rv=float(np.deg2rad(165.0) + psi + np.deg2rad(rng.uniform(-10.0, 10.0))),
        rv_half_angle=float(np.deg2rad(_jitter(rng, 80.0, 0.08))),
        z_base=0.42 * fov[2],
        l_ep=l_ep,
        z_apex=0.42 * fov[2] - l_ep,
        taper=22.0 * zoom,
        base_fade=4.0 * zz,
        fat_sc=_jitter(rng, 14.0, 0.3) * zoom * body,  # subcutaneous fat thickness
        alpha=min(0.7, rng.uniform(0.18, 0.36) * amplitude),  # endocardial radius shrinks 18-36 % at ES
        ell=min(0.4, ell * amplitude),
        kappa=ell * amplitude / max(1e-6, 1.0 - ell * amplitude) + 0.02 * amplitude,
        q_rv=min(0.8, rng.uniform(0.22, 0.36) * amplitude),  # RV crescent depth shrinks at ES
        rv_wall_gain=0.2 * amplitude,
        twist_deg=_jitter(rng, 7.0, 0.2) * amplitude,  # apex +7 deg, base -3 deg at ES
    )
    g["l_en"] = l_ep - 0.6 * wall * zz / zoom
    g["l_rv"] = 0.82 * l_ep
    return g


class _Painter:
    """Composites soft-edged ellipses (``img += alpha (value - img)``) at points ``(u, v, z)``,
    evaluating each shape only inside its bounding box (most shapes cover few points)."""

    def __init__(self, u, v, z, sxy, sz):
        self.u, self.v, self.z, self.sxy, self.sz = u, v, z, sxy, sz
        self.img = np.zeros(u.shape, np.float32)

    def ellipse(self, cu, cv, ru, rv, value, angle=0.0, z_axis=None, within=None):
        """Ellipse centred at (cu, cv) with semi-axes (ru, rv) turned by ``angle``; ``z_axis``:
        ``(cz, rz)`` makes it an ellipsoid (else Z-invariant); ``value``, ``within`` (an extra
        soft factor): scalars or arrays over the points."""
        m = max(ru, rv) + 3.0 * self.sxy
        sel = np.flatnonzero((np.abs(self.u - cu) < m) & (np.abs(self.v - cv) < m))
        if sel.size == 0:
            return
        du, dv = self.u[sel] - cu, self.v[sel] - cv
        if angle:
            ca, sa = np.cos(angle), np.sin(angle)
            du, dv = ca * du + sa * dv, -sa * du + ca * dv
        terms = [(du, ru, self.sxy), (dv, rv, self.sxy)]
        if z_axis is not None:
            terms.append((self.z[sel] - z_axis[0], z_axis[1], self.sz))
        alpha = _soft(_inside(terms))
        if within is not None:
            alpha = alpha * within[sel]
        val = value[sel] if isinstance(value, np.ndarray) else value
        self.img[sel] += alpha * (val - self.img[sel])


def _cardiac_renderer(rng, grid, g):
    """``(render, motion)``: ``render(ref_mm (3, N)) -> (image (N,), labels (N,))`` of the
    reference (ED) anatomy at any points; ``motion`` the heart's :class:`_CardiacMotion`."""
    sxy, sz = float(min(grid.spacing[0], grid.spacing[1])), float(grid.spacing[2])
    zoom, body = g["zoom"], g["body_scale"]
    S = SSFP_INTENSITY
    tex_fine = _texture(rng, grid.shape, 1.0, 1.0)
    tex_coarse = _texture(rng, grid.shape, 2.5, 1.0)
    # thorax, in coordinates (u, v) turned by psi about the LV axis: u -> patient left, v -> anterior
    A, B = 140.0 * zoom * body, 100.0 * zoom * body  # body semi-axes
    ub, vb = -40.0 * zoom, -30.0 * zoom * body  # body centre (the LV sits left-anterior)
    f_sc, m_w = g["fat_sc"], 11.0 * zoom
    Ai, Bi = A - f_sc - m_w, B - f_sc - m_w  # thoracic cavity (inside the ribs)
    r_vb = 16.0 * zoom
    v_sp = vb - Bi + 0.45 * r_vb  # vertebral body centre
    aorta = (ub + r_vb + 9.0 * zoom, v_sp + 1.1 * r_vb, _jitter(rng, 11.0, 0.15) * zoom)
    l_ep, z_b = g["l_ep"], g["z_base"]
    liver = (ub - 0.30 * Ai, vb - 0.05 * Bi, z_b - 1.30 * l_ep, 0.80 * Ai, 0.95 * Bi, _jitter(rng, 0.85, 0.1) * l_ep)
    stomach = (ub + 0.62 * Ai, vb - 0.05 * Bi, z_b - 1.30 * l_ep, 0.30 * Ai, 0.40 * Bi, 0.60 * l_ep)
    rib_angles = np.deg2rad([22, 44, 64, 116, 136, 158, 202, 224, 316, 338]) + rng.uniform(-0.08, 0.08, 10)
    motion = _CardiacMotion(g)
    pap = [(g["theta_rv"] + np.deg2rad(165.0), 0.72), (g["theta_rv"] + np.deg2rad(78.0), 0.68)]
    heart_reach = motion.a_ep + motion.d_rv + motion.t_rv + 16.0 * zoom
    cos_p, sin_p = np.cos(g["psi"]), np.sin(g["psi"])

    def render(ref):
        x, y, z = ref
        dx, dy = x - g["cx"], y - g["cy"]
        u, v = cos_p * dx + sin_p * dy, -sin_p * dx + cos_p * dy
        vox = grid.to_voxels(ref)
        tf, tc = _sample(tex_fine, vox), _sample(tex_coarse, vox)
        P = _Painter(u, v, z, sxy, sz)
        # ---- thorax (Z-invariant apart from the liver and stomach below the heart)
        P.ellipse(ub, vb, A, B, S["fat"] * (1.0 + 0.05 * tc))  # skin, subcutaneous fat
        P.ellipse(ub, vb, A - f_sc, B - f_sc, S["muscle"] * (1.0 + 0.06 * tc))  # chest-wall muscle
        for ang in rib_angles:  # ribs: cortex, marrow
            cu, cv = ub + (Ai + 0.5 * m_w) * np.cos(ang), vb + (Bi + 0.5 * m_w) * np.sin(ang)
            P.ellipse(cu, cv, 4.5 * zoom, 8.0 * zoom, S["cortex"], angle=ang)
            P.ellipse(cu, cv, 2.8 * zoom, 6.0 * zoom, S["marrow"], angle=ang)
        P.ellipse(ub, vb + Bi + 0.5 * m_w, 13.0 * zoom, 5.0 * zoom, S["marrow"])  # sternum
        lung = S["lung"] + (S["lung_vessel"] - S["lung"]) * expit((tf - 1.9) / 0.25)  # faint vessels
        P.ellipse(ub, vb, Ai, Bi, lung)  # lungs: inside the ribs
        cavity = _soft(_inside([(u - ub, Ai, sxy), (v - vb, Bi, sxy)]))
        P.ellipse(
            *liver[:2],
            *liver[3:5],
            S["liver"] * (1.0 + 0.06 * tc) + 0.2 * expit((tf - 2.0) / 0.2),
            z_axis=(liver[2], liver[5]),
            within=cavity,
        )
        P.ellipse(
            *stomach[:2],
            *stomach[3:5],
            S["stomach"] * (1.0 + 0.15 * tc),
            z_axis=(stomach[2], stomach[5]),
            within=cavity,
        )
        P.ellipse(ub + 2.0 * zoom, v_sp + 1.6 * r_vb, 7.0 * zoom, 5.0 * zoom, S["mediastinum"])  # oesophagus
        for sgn in (-1.0, 1.0):  # paraspinal muscles
            P.ellipse(ub + sgn * 1.9 * r_vb, v_sp - 2.2 * r_vb, 1.5 * r_vb, 1.3 * r_vb, S["muscle"])
        P.ellipse(ub, v_sp, r_vb, 0.9 * r_vb, S["cortex"])
        P.ellipse(ub, v_sp, r_vb - 1.5 * zoom, 0.9 * r_vb - 1.5 * zoom, S["marrow"] * (1.0 + 0.1 * tc))  # vertebra
        P.ellipse(ub, v_sp - 1.45 * r_vb, 0.42 * r_vb, 0.4 * r_vb, S["csf"])  # spinal canal
        P.ellipse(aorta[0], aorta[1], aorta[2], aorta[2], S["aorta"])  # descending aorta
        img = P.img
        labels = np.zeros(x.shape, np.uint8)
        # ---- heart, in polar coordinates about the LV axis (only near it)
        hs = np.flatnonzero(dx * dx + dy * dy < heart_reach**2)
        if hs.size:
            img[hs], labels[hs] = _render_heart(g, motion, pap, dx[hs], dy[hs], z[hs], tf[hs], tc[hs], img[hs], sxy, sz)
        return img, labels

    return render, motion


def _render_heart(g, motion, pap, dx, dy, z, tf, tc, img, sxy, sz):
    """Paint the heart over ``img`` at points (dx, dy, z) relative to the LV axis; returns (image, labels)."""
    S, zoom = SSFP_INTENSITY, g["zoom"]
    r = np.sqrt(dx * dx + dy * dy)
    th = np.arctan2(dy, dx)
    zeta, prof = motion.heights(z)
    c = motion.rv_profile(th)
    l_ep, z_b = g["l_ep"], g["z_base"]
    r_ep = g["a_ep"] * prof(l_ep)
    below_base = _soft((z_b - z) / sz)

    def over(img, alpha, value):
        return img + alpha * (value - img)

    groove = np.exp(-(((z - z_b) / (6.0 * g["zoom_z"])) ** 2))  # atrioventricular groove
    tips = np.exp(-(((np.abs(_angle(th - g["theta_rv"])) - g["rv_half_angle"]) / 0.25) ** 2))  # interventricular
    fat_t = (1.0 + 6.0 * groove + 5.0 * tips) * zoom
    outer_r = motion.outer(th) * prof(g["l_rv"] + g["t_rv_z"])
    fat = _soft((np.maximum(outer_r, r_ep) + fat_t - r) / sxy) * _soft(
        _inside([(r, g["a_ep"] + fat_t, sxy), (zeta, l_ep + 3.0 * g["zoom_z"], sz, LV_SHAPE_POWER)])
    )
    img = over(img, fat, S["fat"] * (1.0 + 0.05 * tc))
    rv_wall = _soft(
        _inside(
            [
                (r - r_ep, g["d_rv"] * c + g["t_rv"] * c**0.3 + 1e-3, sxy),
                (zeta, g["l_rv"] + g["t_rv_z"], sz, LV_SHAPE_POWER),
            ]
        )
    )
    img = over(img, rv_wall, S["myocardium"] * (1.0 + 0.04 * tc))
    rv = _soft(_inside([(r - r_ep, g["d_rv"] * c + 1e-3, sxy), (zeta, g["l_rv"], sz, LV_SHAPE_POWER)]))
    img = over(img, rv, S["blood_rv"] * (1.0 + 0.03 * tc))
    epi = _soft(_inside([(r, g["a_ep"], sxy), (zeta, l_ep, sz, LV_SHAPE_POWER)]))
    img = over(img, epi * below_base, S["myocardium"] * (1.0 + 0.04 * tc))
    endo = _soft(_inside([(r, g["a_en"], sxy), (zeta, g["l_en"], sz, LV_SHAPE_POWER)]))
    r_en = g["a_en"] * prof(g["l_en"])
    trabeculae = expit((r - 0.85 * r_en) / (0.04 * g["a_en"] + 1e-3)) * expit((tf - 0.9) / 0.3) * below_base
    img = over(img, endo, S["blood_lv"] * (1.0 + 0.03 * tc) - 0.35 * trabeculae)
    mid = z_b - 0.55 * g["l_en"]
    for ang, rr in pap:  # papillary muscles
        pm = _soft(
            _inside(
                [
                    (dx - rr * g["a_en"] * np.cos(ang), 0.18 * g["a_en"], sxy),
                    (dy - rr * g["a_en"] * np.sin(ang), 0.18 * g["a_en"], sxy),
                    (z - mid, 0.38 * g["l_en"], sz),
                ]
            )
        )
        img = over(img, pm * endo, S["myocardium"])
    labels = np.zeros(r.shape, np.uint8)
    labels[(rv * below_base > 0.5) & (epi < 0.5)] = CARDIAC_LABELS["rv"]
    labels[(epi * below_base > 0.5) & (endo < 0.5)] = CARDIAC_LABELS["myocardium"]
    labels[endo * below_base > 0.5] = CARDIAC_LABELS["lv"]
    return img.astype(np.float32), labels


def make_cardiac_phantom(
    shape=(128, 128, 10),
    spacing=(1.5, 1.5, 8.0),
    n_frames=25,
    noise=0.02,
    amplitude=1.0,
    seed=0,
    patient_id="patient001",
    bias: float = 0.15,
) -> Phantom4D:
    """A short-axis cine of a beating heart in a thorax, ED (frame 0) to ES and back; see the
    module docstring. ``noise``: std of each Gaussian channel of the Rician noise (the blood pool
    is ~0.9); ``bias``: log-std of the smooth coil bias field (0: none). ``labels`` holds the
    LV / myocardium / RV label map of every frame (:data:`CARDIAC_LABELS`)."""
    shape, spacing, n_frames, grid = _check_common("cardiac", shape, spacing, n_frames, noise, amplitude)
    if not np.isfinite(bias) or bias < 0:
        raise ValueError(f"cardiac phantom: bias must be >= 0, got {bias}")
    rng = np.random.default_rng(seed)
    geo = _cardiac_geometry(rng, grid, amplitude)
    heart_rate = float(rng.uniform(55.0, 95.0))
    rr = 60.0 / heart_rate
    es_phys = 0.34 * np.sqrt(rr) / rr  # systole ~ 0.34 s * sqrt(RR): 0.34 at 60 bpm
    i_es = max(2, int(round(es_phys * n_frames)))
    es_frac = i_es / n_frames  # ES exactly on a frame
    p_eject = _jitter(rng, 2.2)
    render, motion = _cardiac_renderer(rng, grid, geo)
    bias_field = _bias_field(rng, grid, bias) if bias > 0 else None

    flat = grid.mm.reshape(3, -1)
    moving = motion.moves(flat)  # the rest of the thorax never moves
    pts = flat[:, moving]
    tau = np.arange(n_frames) / n_frames
    s_all = cardiac_contraction(tau, es_frac, p_eject)
    frames = np.empty((n_frames, *shape), np.float32)
    labels = np.empty((n_frames, *shape), np.uint8)
    u_t0 = np.zeros((i_es + 1, 3, *shape), np.float32)
    u_t1 = np.zeros((i_es + 1, 3, *shape), np.float32)
    img0, lab0 = render(flat)
    for i in range(n_frames):
        img, lab = img0.copy(), lab0.copy()
        if s_all[i] > 0:
            ref = motion.forward(pts, s_all[i])
            img[moving], lab[moving] = render(ref)
        else:
            ref = pts
        frames[i], labels[i] = img.reshape(shape), lab.reshape(shape)
        if i <= i_es:
            for out, target in ((u_t0, ref), (u_t1, motion.inverse(ref, 1.0))):  # s(ES) = 1
                field = np.zeros((3, flat.shape[1]), np.float32)
                field[:, moving] = (target - pts) / grid.spacing.reshape(3, 1)
                out[i] = field.reshape(3, *shape)
    if bias_field is not None:
        frames *= bias_field
    lv = (labels == CARDIAC_LABELS["lv"]).reshape(n_frames, -1).sum(1)
    params = dict(
        kind="cardiac",
        **_generator_params(patient_id, shape, spacing, n_frames, noise, amplitude, seed),
        bias=float(bias),
        heart_rate_bpm=heart_rate,
        es_frac=es_frac,
        p_eject=p_eject,
        contraction=[float(v) for v in s_all],
        ejection_fraction=float(1.0 - lv[i_es] / max(lv[0], 1)),
        geometry={k: float(v) for k, v in geo.items()},
    )
    ph = _finish("cardiac", patient_id, frames, grid, 0, i_es, u_t0, u_t1, noise, rng, params, rician=True)
    ph.labels = labels
    return ph
