"""One normalisation of a scan: training (the layout loaders and their triplets), ``evaluate``
(``load_series``), ``adapt`` (``read_scan_frames``), ``interpolate`` (``interpolate_files``) and
the notebooks (which load through the same functions) hand the model the same input for the
same scan, a CT-like one (clipped to the HU window, then min-max per frame) and an MRI-like one
(min-max per frame)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from interp4d_lite.data import TripletDataset, load_patient, load_series
from interp4d_lite.data.preprocess import HU_WINDOW, guess_data_kind, minmax_per_frame, normalize_scan
from interp4d_lite.selfcheck import allowed_frames, read_scan_frames

SHAPE, N_FRAMES, PAIR = (10, 8, 6), 6, (0, 3)


def _scan(kind: str) -> np.ndarray:
    """``(X, Y, Z, T)``: CT-like in HU (air, tissue, bone above the window's top, padding below
    its bottom) or MRI-like magnitudes."""
    rng = np.random.default_rng(3)
    if kind == "ct":
        data = rng.uniform(-1000.0, 100.0, (*SHAPE, N_FRAMES))
        data[0, 0, 0] = -2048.0  # outside the field of view
        data[1, 1, 1] = 900.0  # bone
        return data.astype(np.float32)
    return rng.uniform(20.0, 900.0, (*SHAPE, N_FRAMES)).astype(np.float32)


def _write(tmp_path, kind: str):
    """The scan as one 4D NIfTI in its layout's folder (lung layout for CT, ACDC for MRI)."""
    data = _scan(kind)
    folder = tmp_path / f"{kind}001"
    folder.mkdir()
    path = folder / f"{kind}001_4d.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    if kind == "ct":
        phases = [10 * k for k in range(N_FRAMES)]
        meta = {"phases": phases, "input_phases": [phases[PAIR[0]], phases[PAIR[1]]], "units": "HU"}
        (folder / "phases.json").write_text(json.dumps(meta))
    else:
        (folder / "Info.cfg").write_text(f"ED: {PAIR[0] + 1}\nES: {PAIR[1] + 1}\nNbFrame: {N_FRAMES}\n")
    return folder, path, np.moveaxis(data, -1, 0)  # frames (T, X, Y, Z)


class _Recorder(nn.Module):
    """Stands in for a student: records every pair of inputs it is given, predicts zeros."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def encode(self, I0, I1):
        self.seen += [(a[0].cpu().numpy(), b[0].cpu().numpy()) for a, b in zip(I0, I1, strict=True)]
        return tuple(I0.shape[2:])

    def decode(self, shape, t):
        return {"image": torch.zeros(len(t), 1, *shape)}

    def forward(self, I0, I1, t):
        return self.decode(self.encode(I0, I1), t)


@pytest.mark.parametrize("kind", ["ct", "mri"])
def test_every_route_hands_the_model_the_same_input(tmp_path, kind, monkeypatch):
    folder, path, frames = _write(tmp_path, kind)
    expected = normalize_scan(frames)  # the one normalisation, the kind guessed from the scan
    assert guess_data_kind(frames) == ("lung" if kind == "ct" else "cardiac")
    if kind == "ct":  # the clip matters for this scan: min-max alone gives another input
        assert not np.allclose(expected, minmax_per_frame(frames), atol=1e-3)
        np.testing.assert_array_equal(expected, minmax_per_frame(np.clip(frames, *HU_WINDOW)))
    i, j = PAIR

    # training (and the notebooks' load_patient): the layout loader and its triplets
    patient = load_patient(folder, volume_shape="native")
    item = TripletDataset([patient])[0]
    np.testing.assert_array_equal(item["I0"][0].numpy(), expected[i])
    np.testing.assert_array_equal(item["I1"][0].numpy(), expected[j])
    np.testing.assert_array_equal(patient.frames, expected)

    # evaluate --input (and the notebooks' load_series)
    series = load_series(path, PAIR)
    np.testing.assert_array_equal(series.frames, expected)

    # adapt: only the frames outside (I, J) are read
    allowed = allowed_frames(N_FRAMES, i, j)
    read, _, _ = read_scan_frames(path, allowed)
    for k in allowed:
        np.testing.assert_array_equal(read[k], expected[k])

    # interpolate: what the student's encoder receives, in the self-check and the interpolation
    import interp4d_lite.weights as weights
    from interp4d_lite.interpolate import interpolate_files

    model = _Recorder()
    monkeypatch.setattr(weights, "load_student", lambda *a, **k: model)
    interpolate_files(None, tmp_path / "out.nii.gz", input_4d=path, frames=PAIR, n=2, device="cpu")
    assert len(model.seen) > 1  # the self-check's windows, then the pair itself
    for a, b in model.seen[:-1]:  # self-check inputs: frames outside (I, J), normalised alike
        assert any(np.array_equal(a, expected[k]) for k in allowed)
        assert any(np.array_equal(b, expected[k]) for k in allowed)
    np.testing.assert_array_equal(model.seen[-1][0], expected[i])
    np.testing.assert_array_equal(model.seen[-1][1], expected[j])
