"""The package's registration (models.registration): its noise correction removes the drift that
noise causes in static tissue, and it still recovers a known smooth motion."""

import torch

torch.set_num_threads(1)

import numpy as np
import pytest

from interp4d_lite.models.registration import noise_std, register_images, register_to_frame, sampling_noise_gain
from interp4d_lite.models.warp import warp


def _texture(shape, seed=0, sigma=2.0):
    """A smooth random texture in [0.2, 0.8] (tissue with contrast everywhere)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.normal(size=shape), sigma)
    x = (x - x.min()) / (x.max() - x.min())
    return (0.2 + 0.6 * x).astype(np.float32)


def _rician(clean, std, rng):
    n1, n2 = rng.normal(0, std, clean.shape), rng.normal(0, std, clean.shape)
    return torch.from_numpy(np.sqrt((clean + n1) ** 2 + n2**2).astype(np.float32))[None, None]


def test_sampling_noise_gain_is_the_variance_of_warped_white_noise():
    assert float(sampling_noise_gain(torch.zeros(1, 3, 2, 2, 2)).max()) == 1.0
    half = torch.zeros(1, 3, 2, 2, 2)
    half[:, 0] = 0.5
    assert torch.allclose(sampling_noise_gain(half), torch.tensor(0.5))
    assert torch.allclose(sampling_noise_gain(half - 3.0), torch.tensor(0.5))  # only the fraction counts
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 1, 48, 48, 48, generator=gen)
    for shift in ((0.3, 0.0, 0.0), (0.5, 0.5, 0.5), (1.25, -0.4, 0.0)):
        u = torch.tensor(shift).view(1, 3, 1, 1, 1).expand(1, 3, 48, 48, 48).contiguous()
        measured = float(warp(noise, u)[..., 3:-3, 3:-3, 3:-3].var())
        assert measured == pytest.approx(float(sampling_noise_gain(u).mean()), rel=0.05), shift


def test_noise_std_estimates_the_noise_of_a_textured_image():
    rng = np.random.default_rng(1)
    clean = _texture((48, 48, 12))
    for std in (0.01, 0.03):
        est = float(noise_std(torch.from_numpy(clean + rng.normal(0, std, clean.shape).astype(np.float32))[None, None]))
        assert est == pytest.approx(std, rel=0.2)
    assert float(noise_std(torch.from_numpy(clean)[None, None])) < 0.002  # a smooth image: (almost) no noise


@pytest.fixture(scope="module")
def static_noisy_frames():
    """One noise-free frame of the cardiac phantom with three independent draws of its Rician
    noise (std 0.02): a static scene, where any field found is drift."""
    from interp4d_lite.data.phantoms import make_phantom

    clean = np.asarray(make_phantom("cardiac", shape=(48, 48, 10), n_frames=6, noise=0.0, seed=1).frames[0])
    rng = np.random.default_rng(0)
    return tuple(_rician(clean, 0.02, rng) for _ in range(3))


def _static_drift(frames, **kw) -> float:
    """Length of the mean field (voxels) of both inputs registered to the third draw."""
    u0, u1 = register_to_frame(*frames, steps=40, **kw)
    return float(np.mean([f.mean(dim=(2, 3, 4)).norm() for f in (u0, u1)]))


def test_noise_correction_removes_the_static_drift_better_than_the_blur(static_noisy_frames):
    plain = _static_drift(static_noisy_frames, noise=0)
    blurred = _static_drift(static_noisy_frames, noise=0, blur=1.0)
    corrected = _static_drift(static_noisy_frames)
    print(f"static drift (voxels): plain {plain:.3f}, blur 1 {blurred:.3f}, noise-corrected {corrected:.3f}")
    assert plain > 0.2  # the drift the correction is for
    assert corrected < blurred < plain
    assert corrected < 0.05


def test_recovers_a_known_smooth_motion_under_noise():
    """A textured volume moved by a smooth field (up to 2.5 voxels); the field found by the
    package's registration is close to the truth, closer than the blurred registration's."""
    shape = (40, 40, 12)
    clean = torch.from_numpy(_texture(shape, seed=5))[None, None]
    x, y = torch.meshgrid(torch.linspace(0, 1, shape[0]), torch.linspace(0, 1, shape[1]), indexing="ij")
    true = torch.zeros(1, 3, *shape)
    true[0, 0] = (1.5 + 1.0 * torch.sin(np.pi * y))[..., None]
    true[0, 1] = (-1.0 * torch.cos(np.pi * x))[..., None]
    moved = warp(clean, true)  # moved(x) = clean(x + true(x)): warp(clean, true) ~ moved
    rng = np.random.default_rng(2)
    I0, It = _rician(clean[0, 0].numpy(), 0.02, rng), _rician(moved[0, 0].numpy(), 0.02, rng)
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6), slice(None))
    errors = {}
    for name, kw in {"package": {}, "blurred": dict(noise=0, blur=1.0)}.items():
        (u,) = register_images((I0,), (It,), steps=60, **kw)
        errors[name] = float((u - true)[inner].norm(dim=1).mean())
    print(errors)
    assert errors["package"] < 0.35
    assert errors["package"] < errors["blurred"]


def test_register_images_checks_its_arguments():
    x = torch.zeros(1, 1, 8, 8, 4)
    with pytest.raises(ValueError, match="give pairs"):
        register_images((x, x), (x,))
    with pytest.raises(ValueError, match="noise must be"):
        register_images((x,), (x + 1,), noise="loud", steps=1)
    with pytest.raises(ValueError, match="noise must be"):
        register_images((x,), (x + 1,), noise=-1.0, steps=1)


def test_teacher_settings_carry_each_kinds_registration_into_the_teacher_config():
    from interp4d_lite.models.registration import REGISTRATION_SETTINGS, TARGET_STEPS, teacher_settings
    from interp4d_lite.train.config import TeacherTrainConfig

    lung = TeacherTrainConfig(**teacher_settings("lung"))
    assert (lung.target_steps, lung.target_smooth, lung.target_lr) == (TARGET_STEPS["lung"], 0.1, 0.2)
    assert lung.model == {"refine_steps": TARGET_STEPS["lung"], "refine_smooth": 0.1, "refine_lr": 0.2}
    assert teacher_settings("linear") == teacher_settings("cardiac")  # no entry: the cardiac settings
    five = teacher_settings("cardiac", 5)
    assert five["target_steps"] == five["model"]["refine_steps"] == 5
    assert five["target_smooth"] == REGISTRATION_SETTINGS["cardiac"]["smooth"]
