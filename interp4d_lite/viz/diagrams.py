"""Diagrams of the models, drawn by code (matplotlib boxes and arrows), from the objects they
show: :func:`plot_student_diagram` draws one decoder level per entry of a
:class:`~interp4d_lite.models.StudentConfig`'s ``decoder_channels``, and
:func:`plot_distillation_diagram` one loss box per term of the ``student`` training recipe
with its weight (``interp4d_lite.train.term_weights("student", config)``), so a changed model,
recipe or configuration changes its picture.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["plot_student_diagram", "plot_distillation_diagram", "TERM_MEANINGS"]

#: what each loss term of the training recipes compares (the distillation diagram's boxes)
TERM_MEANINGS = {
    "charb": "Charbonnier(Î_t, I_t)",
    "ncc": "local NCC(Î_t, I_t)",
    "warped": "Charbonnier(warp(I0, u_t0), I_t)\n+ the same for I1",
    "smooth": "smoothness |∇u|²",
    "distill": "Charbonnier(u, cached\nteacher fields)",
    "feat": "decoder features vs\nthe teacher's (MSE)",
    "target": "Charbonnier(u, cached\nregistration targets)",
}

_COLOURS = {
    "input": "#dbe9f6",
    "encoder": "#fde2c8",
    "time": "#e5d8f0",
    "decoder": "#fff2b3",
    "fusion": "#d5efd5",
    "output": "#f6d5d5",
    "teacher": "#d9d9d9",
    "loss": "#ffffff",
}


class _Canvas:
    """An axes in plain coordinates (no ticks) with boxes and arrows."""

    def __init__(self, width: float, height: float, figsize):
        self.fig, self.ax = plt.subplots(figsize=figsize, constrained_layout=True)
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_axis_off()
        self.boxes: dict[str, tuple[float, float, float, float]] = {}

    def box(self, key: str, x: float, y: float, w: float, h: float, text: str, kind: str, size: float = 8.5):
        """A rounded box with its lower-left corner at (x, y)."""
        patch = FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", fc=_COLOURS[kind], ec="0.25", lw=1.0
        )
        self.ax.add_patch(patch)
        self.ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, wrap=True)
        self.boxes[key] = (x, y, w, h)
        return patch

    def anchor(self, key: str, side: str) -> tuple[float, float]:
        x, y, w, h = self.boxes[key]
        return {
            "left": (x, y + h / 2),
            "right": (x + w, y + h / 2),
            "top": (x + w / 2, y + h),
            "bottom": (x + w / 2, y),
        }[side]

    def arrow(self, a: str, b: str, sa: str = "right", sb: str = "left", label: str | None = None, **kw):
        """An arrow from box ``a``'s side ``sa`` to box ``b``'s side ``sb``."""
        p, q = self.anchor(a, sa), self.anchor(b, sb)
        style = dict(arrowstyle="-|>", mutation_scale=11, lw=1.1, color="0.2", shrinkA=2, shrinkB=2)
        style.update(kw)
        self.ax.add_patch(FancyArrowPatch(p, q, **style))
        if label:
            self.ax.text((p[0] + q[0]) / 2, (p[1] + q[1]) / 2 + 0.12, label, ha="center", va="bottom", fontsize=7)

    def bracket(self, x0: float, x1: float, y: float, text: str):
        """A labelled span over ``x0 .. x1`` at height ``y``."""
        self.ax.annotate(
            "",
            xy=(x0, y),
            xytext=(x1, y),
            arrowprops=dict(arrowstyle="|-|", lw=0.9, color="0.35", shrinkA=0, shrinkB=0),
        )
        self.ax.text((x0 + x1) / 2, y + 0.1, text, ha="center", va="bottom", fontsize=8, style="italic")


def plot_student_diagram(config=None, title: str | None = "the student: encode once, decode per t"):
    """The student's data flow: ``I0``, ``I1`` through the shared encoder (once per pair), the
    decoder levels coarse to fine (one box per ``config.decoder_channels``, each modulated by
    FiLM from ``t``, or given ``t`` as an input channel for ``time_conditioning="channel"``),
    the fusion over the scales, the fields ``u_t0``, ``u_t1`` and mask ``m``, the two warps and
    the blend. ``config``: a :class:`~interp4d_lite.models.StudentConfig` (default: the
    default student). Returns the figure."""
    if config is None:
        from ..models import StudentConfig

        config = StudentConfig()
    levels = list(config.decoder_channels)
    n = len(levels)
    film = config.time_conditioning == "film"
    height = max(6.4, 1.3 * n + 3.2)
    c = _Canvas(18.0, height, figsize=(15, 0.72 * height + 0.6))
    mid = height / 2 - 0.3
    c.box("I0", 0.2, mid + 0.6, 1.2, 0.8, "I0\n(frame at t = 0)", "input")
    c.box("I1", 0.2, mid - 0.8, 1.2, 0.8, "I1\n(frame at t = 1)", "input")
    enc = "-".join(str(ch) for ch in config.encoder_channels)
    c.box(
        "enc",
        2.1,
        mid - 1.0,
        2.2,
        2.6,
        f"shared encoder\n(siamese: the same\nweights for I0, I1)\n\n{enc} channels",
        "encoder",
    )
    c.arrow("I0", "enc")
    c.arrow("I1", "enc")
    # decoder levels, coarse (top) to fine (bottom)
    xd = 6.2
    top = mid + 0.65 * n
    scale = 2 ** (len(config.encoder_channels) - 1)
    for i, ch in enumerate(levels):
        y = top - 1.3 * i - 0.5
        mod = "FiLM: h·(1 + γ) + β" if film else "t as an input channel"
        c.box(
            f"dec{i}", xd, y, 2.6, 1.0, f"decoder level {i + 1}: 1/{scale >> i}\n{ch} channels\n{mod}", "decoder", 7.5
        )
        c.arrow("enc", f"dec{i}", "right", "left", color="0.45")
        if i:
            c.arrow(f"dec{i - 1}", f"dec{i}", "bottom", "top")
            x, yy = c.anchor(f"dec{i}", "top")
            c.ax.text(x + 0.1, yy + 0.1, "fields, upsampled ×2", fontsize=6.5, va="bottom")
    # time path, below the encoder: into every decoder level
    c.box("t", 0.2, 0.15, 0.8, 0.7, "t", "input", 10)
    if film:
        c.box("emb", 1.3, 0.1, 2.6, 0.8, f"[t, sin 2^kπt, cos 2^kπt]\nk < {config.time_freqs} → MLP", "time", 7.5)
        c.box("gb", 4.3, 0.1, 1.5, 0.8, "γ(t), β(t)\nper level", "time", 8)
        c.arrow("t", "emb")
        c.arrow("emb", "gb")
        src = "gb"
    else:
        src = "t"
    for i in range(n):
        c.arrow(src, f"dec{i}", "top", "left", color="tab:purple", ls="--", connectionstyle="arc3,rad=-0.2")
    # fusion, outputs, warps, blend
    fusion = {
        "multiscale": "fusion: per-voxel\nsoftmax weights\nover the scales",
        "finest": "finest level only\n(no fusion)",
        "fields": "field-space fusion:\nthe scales' fields,\nweights per voxel",
    }[config.fusion]
    c.box("fus", 9.8, mid - 0.6, 2.0, 1.6, fusion, "fusion")
    for i in range(n):
        c.arrow(f"dec{i}", "fus", "right", "left", color="0.45")
    c.box("u0", 12.6, mid + 0.9, 1.3, 0.7, "u_t0", "output", 9)
    c.box("m", 12.6, mid - 0.05, 1.3, 0.7, "mask m", "output", 9)
    c.box("u1", 12.6, mid - 1.0, 1.3, 0.7, "u_t1", "output", 9)
    for k in ("u0", "m", "u1"):
        c.arrow("fus", k)
    c.box("w0", 14.4, mid + 0.9, 1.5, 0.7, "warp(I0, u_t0)", "output", 8)
    c.box("w1", 14.4, mid - 1.0, 1.5, 0.7, "warp(I1, u_t1)", "output", 8)
    c.arrow("u0", "w0")
    c.arrow("u1", "w1")
    c.box("out", 16.3, mid - 0.2, 1.5, 1.0, "Î_t = m·w0\n+ (1 − m)·w1", "output", 8)
    c.arrow("w0", "out", "right", "top")
    c.arrow("w1", "out", "right", "bottom")
    c.arrow("m", "out", "right", "left", color="0.45")
    c.bracket(0.2, 4.3, height - 0.45, "encode: once per pair (I0, I1)")
    c.bracket(xd, 17.8, height - 0.45, "decode: once per t (a sweep of t re-uses the encoding)")
    if title:
        c.ax.set_title(title, fontsize=11)
    return c.fig


def plot_distillation_diagram(weights, title: str | None = "distillation: what the student learns from"):
    """The distillation data flow: before training, the privileged teacher (it also sees the
    real frame ``I_t``) and its instance optimisation give refined fields for every training
    sample, cached once; at every step the student (``I0``, ``I1``, ``t`` only) is scored by the
    loss terms in ``weights`` (term name -> weight, in summation order: the ``student`` recipe's
    terms and their weights in a config are :func:`interp4d_lite.train.term_weights`), one box
    each with its weight (a term of weight 0 is drawn greyed out: it is skipped), summed into one
    ``backward`` and Adam step. Returns the figure."""
    weights = {str(k): float(v) for k, v in dict(weights).items()}
    terms = list(weights)
    unknown = [t for t in terms if t not in TERM_MEANINGS]
    if unknown:
        raise ValueError(f"plot_distillation_diagram: no description of the terms {unknown}")
    width = max(17.0, 2.3 * len(terms) + 3.5)
    c = _Canvas(width, 8.2, figsize=(15, 7.6))
    # before training: the teacher and its cache
    c.box("sample", 0.2, 6.2, 2.4, 1.1, "training sample\nI0, I1, t and the\nreal frame I_t", "input")
    c.box("teacher", 3.3, 6.2, 2.6, 1.1, "teacher network\n(privileged: it also\nsees I_t)", "teacher")
    c.box("refine", 6.6, 6.2, 3.2, 1.1, "instance optimisation:\nregister I0, I1 to I_t\n(a few Adam steps)", "teacher")
    c.box(
        "cache",
        10.5,
        6.2,
        2.8,
        1.1,
        "refined fields u_t0, u_t1\ncached once per sample\n(target_u_t0, target_u_t1)",
        "fusion",
    )
    c.arrow("sample", "teacher")
    c.arrow("teacher", "refine", label="its fields")
    c.arrow("refine", "cache")
    c.bracket(0.2, 13.3, 7.65, "before the first step, once per training sample (frozen teacher, no gradients)")
    # every step: the student and its terms
    c.box("inputs", 0.2, 3.6, 2.4, 1.1, "I0, I1, t\n(what the student\nmay see)", "input")
    c.box("student", 3.3, 3.6, 2.6, 1.1, "student\n(encode, decode)", "decoder")
    c.box("out", 6.6, 3.6, 3.2, 1.1, "u_t0, u_t1, mask m,\nÎ_t = m·warp(I0, u_t0)\n+ (1 − m)·warp(I1, u_t1)", "output")
    c.box("It", 10.5, 3.6, 2.8, 1.1, "the real frame I_t\n(the image target)", "input")
    c.arrow("inputs", "student")
    c.arrow("student", "out")
    c.arrow("sample", "inputs", "bottom", "top", color="0.45")
    c.arrow("sample", "It", "bottom", "top", color="0.45", connectionstyle="arc3,rad=0.12")
    x0 = 0.2
    w = (width - 0.4 - 0.25 * (len(terms) - 1)) / len(terms)
    for i, name in enumerate(terms):
        key = f"term_{name}"
        on = weights[name] != 0
        text = f"{name} (× {weights[name]:g})\n{TERM_MEANINGS[name]}" + ("" if on else "\nweight 0: skipped")
        patch = c.box(key, x0 + i * (w + 0.25), 1.5, w, 1.2, text, "loss", 7.5)
        if not on:
            patch.set_linestyle("--")
            patch.set_edgecolor("0.6")
            continue
        c.arrow("out", key, "bottom", "top", color="0.55", lw=0.8)
        if name in ("distill", "target"):
            c.arrow("cache", key, "bottom", "top", color="tab:green", lw=1.4, connectionstyle="arc3,rad=-0.2")
        elif name != "smooth" and name != "feat":
            c.arrow("It", key, "bottom", "top", color="tab:blue", lw=0.8, ls="--")
    c.box("sum", width / 2 - 3.0, 0.1, 6.0, 0.8, "loss = Σ weight × term  →  backward  →  Adam step", "loss", 9)
    for name in terms:
        if weights[name] != 0:
            c.arrow(f"term_{name}", "sum", "bottom", "top", color="0.55", lw=0.7)
    c.bracket(0.2, width - 0.2, 5.0, "every training step")
    if title:
        c.ax.set_title(title, fontsize=11)
    return c.fig
