"""The cardiac phantom's motion: the contraction curve over the cycle
(:func:`cardiac_contraction`) and the heart's backward map about the LV long axis
(:class:`_CardiacMotion`: twist, longitudinal shortening, radial contraction with wall
thickening; each step inverts in closed form). The anatomy is in :mod:`.cardiac`."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

#: the ventricles' radius falls as ``sqrt(1 - (depth / length)^p)`` below the base plane: p = 4 keeps
#: the walls near-parallel to the long axis from the base to mid-ventricle and rounds the apex
LV_SHAPE_POWER = 4.0


def cardiac_contraction(tau, es_frac, p_eject):
    """Contraction ``s(tau)`` in [0, 1] over one cycle ``tau in [0, 1)`` (0 = ED, 1 = ES):
    ``1 - (1 - u)^p`` over ejection (fast early); over filling (``v`` in [0, 1]) rapid early
    filling (75 % of the volume by v = 0.4), slow diastasis, then the atrial kick (last 25 %)."""
    tau = np.asarray(tau, dtype=np.float64) % 1.0
    u = np.clip(tau / es_frac, 0.0, 1.0)
    v = np.clip((tau - es_frac) / (1.0 - es_frac), 0.0, 1.0)
    early = 0.75 * 0.5 * (1.0 - np.cos(np.pi * np.clip(v / 0.4, 0.0, 1.0)))
    diastasis = 0.07 * np.clip((v - 0.4) / 0.35, 0.0, 1.0)
    kick = 0.18 * 0.5 * (1.0 - np.cos(np.pi * np.clip((v - 0.75) / 0.25, 0.0, 1.0)))
    return np.where(tau <= es_frac, 1.0 - (1.0 - u) ** p_eject, 1.0 - early - diastasis - kick)


def _bump(r, r0, width):
    """1 for ``r <= r0``, a half-cosine down to exactly 0 at ``r0 + width``, 0 beyond."""
    a = np.clip((r - r0) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * a))


def _angle(a):
    """Wrap angles to [-pi, pi]."""
    return a - (2.0 * np.pi) * np.rint(a / (2.0 * np.pi))


def _piecewise_r2(r, src, dst):
    """Radial map through matching knots ``src -> dst`` (lists, ``src[0] = dst[0] = 0``, both
    non-decreasing), linear in ``r^2`` between knots (constant area ratio per ring), identity
    beyond the last knot. Swapping ``src`` and ``dst`` gives the exact inverse."""
    r2 = r * r
    out = r2
    for i in reversed(range(len(src) - 1)):
        a2, b2, c2, d2 = src[i] ** 2, src[i + 1] ** 2, dst[i] ** 2, dst[i + 1] ** 2
        frac = np.clip((r2 - a2) / np.maximum(b2 - a2, 1e-9), 0.0, 1.0)
        out = np.where(r2 < b2, c2 + frac * (d2 - c2), out)
    return np.sqrt(np.maximum(out, 0.0))


class _CardiacMotion:
    """Backward map ``phi_s`` of the heart for contraction ``s`` (0 = ED, 1 = ES), about the LV
    long axis (parallel to Z through ``(cx, cy)``): twist A (angle depends on r, z), longitudinal
    shortening C (piecewise linear in z, amount depends on r, theta), radial contraction B
    (piecewise in r^2 through knots at the LV endocardium, LV epicardium, RV endocardium, RV free
    wall and the end of a taper; knots depend on theta, z). ``phi = B o C o A`` on frame
    coordinates; each step leaves the coordinates that its own parameters depend on unchanged,
    so it inverts in closed form. Everything beyond the taper (the thorax) stays exactly still."""

    def __init__(self, g):
        self.__dict__.update(g)

    # ---- geometry of the reference (ED) heart, at angle th and height z (mm)
    def rv_profile(self, th):
        """RV crescent depth factor in [0, 1] around the LV (1 at the RV's centre direction)."""
        a = np.clip(np.abs(_angle(th - self.theta_rv)) / self.rv_half_angle, 0.0, 1.0)
        return np.maximum(np.cos(0.5 * np.pi * a), 0.0) ** 0.7

    def heights(self, z):
        zeta = np.maximum(self.z_base - z, 0.0)  # depth below the base plane
        prof = lambda length: np.sqrt(np.clip(1.0 - (zeta / length) ** LV_SHAPE_POWER, 0.0, 1.0))
        return zeta, prof

    def knots(self, th, z, s):
        """Reference radii ``R`` and frame radii ``F`` of the radial step at (th, z) for contraction s."""
        zeta, prof = self.heights(z)
        c = self.rv_profile(th)
        g = s * expit((self.z_base + self.base_fade - z) / (0.35 * self.base_fade))  # fades above the base
        r1 = self.a_en * prof(self.l_en)
        r2 = self.a_ep * prof(self.l_ep)
        r3 = r2 + self.d_rv * c * prof(self.l_rv)
        r4 = r2 + (self.d_rv * c + self.t_rv * c**0.3) * prof(self.l_rv + self.t_rv_z)
        r5 = r4 + self.taper
        f1 = r1 * (1.0 - self.alpha * g)
        f2 = np.sqrt(f1 * f1 + (r2 * r2 - r1 * r1) * (1.0 + self.kappa * g))  # wall area grows: thickening
        f3 = f2 + (r3 - r2) * (1.0 - self.q_rv * g)  # RV crescent empties
        f4 = f3 + (r4 - r3) * (1.0 + self.rv_wall_gain * g)  # RV free wall thickens
        zero = np.zeros_like(r1)
        return [zero, r1, r2, r3, r4, r5], [zero, f1, f2, f3, f4, r5]

    def outer(self, th):
        """ED outer radius of the heart (RV free wall included) at its widest height."""
        c = self.rv_profile(th)
        return self.a_ep + self.d_rv * c + self.t_rv * c**0.3

    def _twist(self, r, z, s):
        h = -0.4 + 1.4 * np.clip((self.z_base - z) / self.l_ep, 0.0, 1.0)  # base -0.4, apex +1
        return np.deg2rad(self.twist_deg) * s * h * _bump(r, self.a_ep, self.taper)

    def _stretch(self, r, th, s):
        return 1.0 + self.ell * s * _bump(r, self.outer(th), self.taper)

    def _longitudinal(self, z, k, inverse):
        """Identity below the apex, stretch by k (>= 1) from the apex to the base, then a constant
        shift D above it (the base plane descends by D toward the fixed apex)."""
        za, zb = self.z_apex, self.z_base
        d = (zb - za) * (1.0 - 1.0 / k)
        if not inverse:
            zb_frame = za + (zb - za) / k
            return np.where(z <= za, z, np.where(z <= zb_frame, za + (z - za) * k, z + d))
        return np.where(z <= za, z, np.where(z <= zb, za + (z - za) / k, z - d))

    def moves(self, p):
        """Boolean mask of the frame points (3, N) mm that any contraction moves (elsewhere every
        step is exactly the identity): within ``outer + taper`` of the LV axis, with a margin for
        the twist's turn of theta."""
        dx, dy = p[0] - self.cx, p[1] - self.cy
        th = np.arctan2(dy, dx)
        reach = np.maximum(self.outer(th - 0.1), self.outer(th + 0.1))
        reach = np.maximum(reach, self.outer(th)) + self.taper + 1.0
        return dx * dx + dy * dy < reach * reach

    def forward(self, p, s):
        """phi_s: (3, ...) mm frame points -> reference points."""
        dx, dy, z = p[0] - self.cx, p[1] - self.cy, p[2]
        r = np.sqrt(dx * dx + dy * dy)
        ang = self._twist(r, z, s)  # A: twist
        c, sn = np.cos(ang), np.sin(ang)
        dx, dy = c * dx - sn * dy, sn * dx + c * dy
        th = np.arctan2(dy, dx)
        z = self._longitudinal(z, self._stretch(r, th, s), inverse=False)  # C: longitudinal
        ref_knots, frame_knots = self.knots(th, z, s)
        scale = _piecewise_r2(r, frame_knots, ref_knots) / np.maximum(r, 1e-6)  # B: radial
        return np.stack([self.cx + dx * scale, self.cy + dy * scale, z])

    def inverse(self, q, s):
        """phi_s^{-1}: (3, ...) mm reference points -> frame points."""
        dx, dy, z = q[0] - self.cx, q[1] - self.cy, q[2]
        r_ref = np.sqrt(dx * dx + dy * dy)
        th = np.arctan2(dy, dx)
        ref_knots, frame_knots = self.knots(th, z, s)  # B^-1 (th, z unchanged by B)
        r = _piecewise_r2(r_ref, ref_knots, frame_knots)
        scale = r / np.maximum(r_ref, 1e-6)
        dx, dy = dx * scale, dy * scale
        z = self._longitudinal(z, self._stretch(r, th, s), inverse=True)  # C^-1 (r, th unchanged by C)
        ang = -self._twist(r, z, s)  # A^-1 (r, z unchanged by A)
        c, sn = np.cos(ang), np.sin(ang)
        return np.stack([self.cx + c * dx - sn * dy, self.cy + sn * dx + c * dy, z])
