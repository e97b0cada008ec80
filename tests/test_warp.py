"""Warping convention: warp(I, u)(x) = I(x + u(x)), u in voxels, channel c along axis c."""

import numpy as np
import pytest
import torch

from interp4d_lite.models.warp import Warper, warp


def _vol(shape, seed=0):
    return torch.rand((1, 1, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(12, 12, 12), (16, 10, 7)])
def test_zero_field_is_identity(shape):
    img = _vol(shape)
    out = warp(img, torch.zeros(1, 3, *shape))
    assert torch.allclose(out, img, atol=1e-6)


@pytest.mark.parametrize("shape", [(12, 12, 12), (20, 14, 9)])
@pytest.mark.parametrize("shift", [(2, 0, 0), (0, -3, 0), (0, 0, 1), (1, -2, 3)])
def test_integer_shift_moves_by_exactly_that_shift(shape, shift):
    img = _vol(shape, seed=1)
    u = torch.tensor(shift, dtype=torch.float32).view(1, 3, 1, 1, 1).expand(1, 3, *shape).contiguous()
    out = warp(img, u)[0, 0]
    sx, sy, sz = shift
    X, Y, Z = shape
    # out[x] = img[x + s] wherever x + s is inside the volume
    xs, ys, zs = (
        slice(max(0, -sx), X - max(0, sx)),
        slice(max(0, -sy), Y - max(0, sy)),
        slice(max(0, -sz), Z - max(0, sz)),
    )
    src = img[0, 0][max(0, sx) : X + min(0, sx), max(0, sy) : Y + min(0, sy), max(0, sz) : Z + min(0, sz)]
    assert torch.allclose(out[xs, ys, zs], src, atol=1e-5)


def test_half_voxel_shift_interpolates_linearly_in_voxel_units():
    shape = (10, 6, 5)  # non-cubic: a normalised-coordinate bug would scale the shift per axis
    ramp = torch.arange(shape[2], dtype=torch.float32).view(1, 1, 1, 1, -1).expand(1, 1, *shape)
    u = torch.zeros(1, 3, *shape)
    u[:, 2] = 0.5
    out = warp(ramp, u)
    assert torch.allclose(out[..., :-1], ramp[..., :-1] + 0.5, atol=1e-5)


def test_numpy_single_volume_and_batch_broadcast():
    img = np.random.default_rng(0).random((8, 9, 10)).astype(np.float32)
    u = np.zeros((3, 8, 9, 10), np.float32)
    u[0] = 1
    out = warp(img, u)
    assert isinstance(out, np.ndarray) and out.shape == img.shape
    np.testing.assert_allclose(out[:-1], img[1:], atol=1e-5)
    w = Warper()
    fields = torch.zeros(4, 3, 8, 9, 10)
    assert w(torch.from_numpy(img)[None, None], fields).shape == (4, 1, 8, 9, 10)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="differ"):
        warp(torch.zeros(1, 1, 8, 8, 8), torch.zeros(1, 3, 8, 8, 4))


def test_cached_grid_follows_dtype_changes():
    """The reference grid is cached per shape, dtype and device: a warper must not reuse a
    grid of another dtype/device (e.g. after model.to('cuda') or .double())."""
    w = Warper()
    img = torch.rand(1, 1, 6, 7, 5)
    disp = torch.zeros(1, 3, 6, 7, 5)
    out32 = w(img, disp)
    out64 = w(img.double(), disp.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32)
    for ref in (False, True):  # MONAI's Warp alone caches by shape only; the wrapper rebuilds it
        w = Warper(reference=ref)
        w(img, disp)
        torch.testing.assert_close(w(img.double(), disp.double()).float(), out32)


@pytest.mark.parametrize(("shape", "b_image", "b_field"), [((9, 7, 5), 2, 2), ((12, 10, 8), 1, 3), ((16, 16, 1), 1, 1)])
def test_warper_is_bit_identical_to_monai_warp(shape, b_image, b_field):
    """The default warper computes MONAI's Warp on whole tensors: the same image and the same
    gradients, bit for bit (a singleton axis included)."""
    g = torch.Generator().manual_seed(0)
    img, disp = torch.rand(b_image, 2, *shape, generator=g), 3 * torch.randn(b_field, 3, *shape, generator=g)
    results = []
    for reference in (False, True):
        im, u = img.clone().requires_grad_(True), disp.clone().requires_grad_(True)
        out = Warper(reference=reference)(im, u)
        out.sin().sum().backward()
        results.append((out.detach(), im.grad, u.grad))
    for fast, ref in zip(*results):
        assert torch.equal(fast, ref)
