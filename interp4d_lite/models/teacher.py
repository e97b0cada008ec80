"""The privileged teacher: sees I0, I1 **and the true I_t** (training only).

Same family as the student, so its decoder features match the student's level by
level (same ``decoder_channels``) and feature distillation is a plain MSE:
the shared encoder runs on I0, I1 and I_t; at each level the generator sees the
warped features of I0 and I1 *and* the features of I_t (already on the grid of time
t, no warp), so it can find the true, non-linear deformation instead of guessing it
from t. No FiLM: it needs no timestamp. The blend mask starts at 0.5.

Instance optimisation (``refine_steps > 0``, eval mode only): the teacher is privileged,
so finding its fields is a registration problem, u_t0 = R(fixed=I_t, moving=I0) and
u_t1 = R(I_t, I1), which a few Adam steps per sample solve well (LapIRN/ConvexAdam-style
"instance optimisation"): starting from the network's fields, the package's registration
(:func:`~interp4d_lite.models.registration.register_to_frame`: a residual on a coarse grid,
1/``refine_scale``, fitted to Charbonnier(warp(I0, u_t0), I_t) + Charbonnier(warp(I1, u_t1), I_t)
+ a noise correction + ``refine_smooth`` * gradient smoothness). The network's features (for
feature distillation) and mask are unchanged. A network trained for a few hundred CPU steps
barely uses its privileged frame; the refined fields are what makes the teacher worth
distilling (tests/test_models.py; docs/METHOD.md, "Teacher (privileged)" and "Knowledge distillation").
Training (``train()`` mode) never refines, so the network is trained as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Encoder, as_timestamps, pad_to_multiple
from .config import JSONConfig
from .fusion import DeformationFusion, synthesize
from .generator import DeformationFeatureGenerator
from .registration import register_to_frame
from .student import decoded_encoder_channels, log_prior_mask
from .warp import Warper


@dataclass
class TeacherConfig(JSONConfig):
    """Sizes of the teacher (as the student's, for feature distillation) and its instance
    optimisation in eval mode."""

    in_channels: int = 1
    encoder_channels: tuple[int, ...] = (8, 16, 32, 64)
    decoder_channels: tuple[int, ...] = (32, 16, 8)  # must equal the student's for feature distillation
    fused_channels: int = 8
    refine_steps: int = 15  # instance-optimisation steps in eval mode (0 = network only)
    refine_lr: float = 0.1  # Adam step on the residual field, voxels
    refine_smooth: float = 1.0  # weight of the gradient smoothness of the refined fields
    refine_scale: int = 4  # the residual lives on a grid 1/refine_scale of the image


class Teacher(nn.Module):
    """The privileged teacher: sees I0, I1 and the true I_t; ``forward(I0, I1, It, t)``
    returns the interpolator dict that the student is distilled from (module docstring)."""

    def __init__(self, config: TeacherConfig | None = None):
        super().__init__()
        self.config = config = config or TeacherConfig()
        enc = decoded_encoder_channels(config.encoder_channels, config.decoder_channels)
        self.multiple = 2 ** (len(config.encoder_channels) - 1)
        self.n_decoded = len(config.decoder_channels)
        self.encoder = Encoder(config.in_channels, config.encoder_channels)
        self.generator = DeformationFeatureGenerator(enc, config.decoder_channels, context=True)
        self.fusion = DeformationFusion(config.decoder_channels, config.fused_channels)
        self.warp = Warper()

    def forward(self, I0: torch.Tensor, I1: torch.Tensor, It: torch.Tensor, t, refine_steps: int | None = None) -> dict:
        """Reconstruct the frame ``It`` at ``t`` from ``I0``, ``I1`` and ``It`` itself (privileged).

        The fields do not depend on ``t`` (the teacher sees I_t itself); ``t`` only gives the
        blend mask the student's prior, ``m = sigmoid(logit + logit(1 - t))``: t is known
        wherever I_t is, so the comparison with the student stays fair. In eval mode with
        refinement steps the fields are refined by instance optimisation (:meth:`refine`).
        This one method is what the package trains, distils from and evaluates.

        Args:
            I0: the frame at t = 0, ``(B, 1, X, Y, Z)``, normalised intensity in [0, 1] (any X, Y, Z).
            I1: the frame at t = 1, same shape as ``I0``.
            It: the true frame at ``t``, same shape as ``I0``.
            t: the timestamps of ``It`` in [0, 1], ``(B,)`` (a float is used for every item).
            refine_steps: instance-optimisation steps in eval mode (default ``config.refine_steps``;
                0 = the network's fields alone). Training mode never refines.

        Returns:
            The interpolator dict of :meth:`Student.forward` with ``M = B`` items (the same keys
            and shapes), whose ``image`` reconstructs ``It``; refined fields, warps and image are
            detached.
        """
        if not (I0.shape == I1.shape == It.shape) or I0.dim() != 5:
            raise ValueError(
                f"I0, I1, It must share a (B, C, X, Y, Z) shape; got {tuple(I0.shape)}, {tuple(I1.shape)}, {tuple(It.shape)}"
            )
        b = I0.shape[0]
        x = pad_to_multiple(torch.cat([I0, I1, It]), self.multiple)  # (3B, 1, X', Y', Z')
        pyramid = self.generator.lateral(self.encoder(x)[::-1][: self.n_decoded])  # coarse -> fine
        f0, f1, ft = ([f[i * b : (i + 1) * b] for f in pyramid] for i in range(3))
        features, fields = self.generator(f0, f1, ctx=ft)
        delta, mask_logit, weights = self.fusion(features)
        t = as_timestamps(t, b, device=I0.device)
        out = synthesize(
            I0,
            I1,
            fields[-1] + delta,
            mask_logit + log_prior_mask(t).to(mask_logit.dtype),
            weights,
            x.shape[2:],
            I0.shape[2:],
            self.warp,
        )
        out["features"] = features
        steps = self.config.refine_steps if refine_steps is None else int(refine_steps)
        if steps > 0 and not self.training:
            out.update(self.refine(I0, I1, It, out, steps=steps))
        return out

    def refine(self, I0: torch.Tensor, I1: torch.Tensor, It: torch.Tensor, out: dict, steps: int | None = None) -> dict:
        """Instance optimisation of ``(u_t0, u_t1)`` on the privileged per-field image loss;
        returns the updated ``u_t0, u_t1, warped0, warped1, image`` (all detached)."""
        c = self.config
        u_t0, u_t1 = register_to_frame(
            I0,
            I1,
            It,
            init=(out["u_t0"], out["u_t1"]),
            steps=c.refine_steps if steps is None else steps,
            lr=c.refine_lr,
            smooth=c.refine_smooth,
            scale=c.refine_scale,
            warper=self.warp,
        )
        with torch.no_grad():
            u_t0, u_t1 = u_t0.to(out["u_t0"].dtype), u_t1.to(out["u_t1"].dtype)
            w0, w1 = self.warp(I0, u_t0), self.warp(I1, u_t1)
            m = out["mask"]
            return {"u_t0": u_t0, "u_t1": u_t1, "warped0": w0, "warped1": w1, "image": m * w0 + (1 - m) * w1}
