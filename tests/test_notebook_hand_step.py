"""The training steps written by hand in notebooks 02 and 03 (``my_teacher_step``,
``my_student_step``) are the package's step: on a batch built as the notebooks build it
(``TripletDataset`` items, ``collate``, the recipe's targets), with weights that differ from
the defaults, their loss and every term equal ``training_step``'s, and the weights after
their Adam step equal those after ``training_step``'s loss is backpropagated and stepped."""

from __future__ import annotations

import ast

import nbformat
import pytest
import torch

torch.set_num_threads(1)

from interp4d_lite.data import TripletDataset  # noqa: E402
from interp4d_lite.models import Student, StudentConfig, Teacher, TeacherConfig  # noqa: E402
from interp4d_lite.models.teacher import register_to_frame  # noqa: E402
from interp4d_lite.train import DistillConfig, TeacherTrainConfig  # noqa: E402
from interp4d_lite.train.datasets import resolve_patients  # noqa: E402
from interp4d_lite.train.recipes import teacher_output, training_step  # noqa: E402
from interp4d_lite.train.sampling import collate  # noqa: E402
from interp4d_lite.tutorial import NOTEBOOK_DIR  # noqa: E402

SHAPE = (16, 16, 8)
SIZES = dict(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4)


def _cell_functions(notebook: str, cell_id: str) -> dict:
    """The imports and functions of one notebook cell, executed (nothing else of the cell)."""
    nb = nbformat.read(str(NOTEBOOK_DIR / f"{notebook}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    assert "build-it" in cell.metadata.get("tags", []), f"{notebook}: cell {cell_id} is not tagged build-it"
    tree = ast.parse(cell.source)
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    ns: dict = {"torch": torch}
    exec(compile(ast.Module(body=keep, type_ignores=[]), f"{notebook}:{cell_id}", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def batch(cardiac_root):
    """Two training triplets, as the notebooks build them."""
    patients, _ = resolve_patients(data_root=cardiac_root, volume_shape=SHAPE)
    triplets = TripletDataset(patients)
    return collate([triplets[0], triplets[len(triplets) - 1]])


def _same_step(make_net, hand_step, package_step, batch, cfg):
    """Run the hand step and the package's step (+ backward and Adam) on two nets of the same
    initial weights; compare losses, terms and the weights after the step."""
    torch.manual_seed(0)
    mine = make_net()
    torch.manual_seed(0)
    theirs = make_net()
    init = [p.detach().clone() for p in mine.parameters()]
    mine_loss, mine_parts = hand_step(mine, torch.optim.Adam(mine.parameters(), lr=cfg.lr), batch, cfg)
    loss, parts = package_step(theirs)
    assert set(mine_parts) >= set(parts) and len(parts) >= 5
    torch.testing.assert_close(mine_loss, loss.item(), rtol=1e-5, atol=1e-7)
    for name, value in parts.items():
        torch.testing.assert_close(mine_parts[name], value, rtol=1e-5, atol=1e-7)
    opt = torch.optim.Adam(theirs.parameters(), lr=cfg.lr)
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = sum(float((a.detach() - b).abs().max()) for a, b in zip(mine.parameters(), init))
    assert moved > 10 * cfg.lr, "the hand-written step did not move the weights"
    for a, b in zip(mine.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    return mine_parts


def test_notebook_02_hand_step_is_the_teacher_recipe(batch):
    ns = _cell_functions("02_teacher_training", "hand-02-step")
    cfg = TeacherTrainConfig(w_charbonnier=0.7, w_ncc=0.3, w_warped=1.5, w_smooth=2.0, w_target=0.4, target_steps=5)
    batch = dict(batch)
    batch["target_u_t0"], batch["target_u_t1"] = register_to_frame(
        batch["I0"], batch["I1"], batch["It"], steps=cfg.target_steps, smooth=cfg.target_smooth
    )

    def make_net():
        return Teacher(TeacherConfig(**SIZES)).train()

    parts = _same_step(
        make_net, ns["my_teacher_step"], lambda net: training_step("teacher", net, batch, cfg), batch, cfg
    )
    assert list(parts) == ["charb", "ncc", "warped", "smooth", "target"] and parts["target"] > 0


def test_notebook_03_hand_step_is_the_student_recipe(batch):
    ns = _cell_functions("03_distillation", "hand-03-step")
    cfg = DistillConfig(w_charbonnier=0.7, w_ncc=0.3, w_warped=1.5, w_smooth=2.0, distill_weight=2.5)
    assert not cfg.teacher_better and cfg.distill_refined and cfg.cache_targets  # the defaults the cell writes out
    torch.manual_seed(1)
    teacher = Teacher(TeacherConfig(**SIZES, refine_steps=3)).eval()
    batch = dict(batch)
    targets = teacher_output(teacher, batch, refine=cfg.distill_refined)
    batch["target_u_t0"], batch["target_u_t1"] = targets["u_t0"], targets["u_t1"]
    batch["target_image"] = targets["image"]  # what RIFE's mask compares, as notebook 03's batch carries it

    def make_net():
        return Student(StudentConfig(**SIZES, time_hidden=8)).train()

    distill = []
    for c in (cfg, cfg.replace(teacher_better=True)):  # every voxel (the default), and RIFE's mask
        parts = _same_step(
            make_net,
            ns["my_student_step"],
            lambda net, c=c: training_step("student", net, batch, c, teacher=teacher),
            batch,
            c,
        )
        assert list(parts) == ["charb", "ncc", "warped", "smooth", "distill"] and parts["distill"] > 0
        distill.append(parts["distill"])
    assert distill[0] != distill[1]  # the mask left some voxels out
