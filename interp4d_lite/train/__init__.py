"""Training, evaluation, checkpoints and distributed running (see docs/ARCHITECTURE.md).

Notebook use::

    from interp4d_lite.train import ensure_checkpoint, load_model, plot_history
    teacher, hist = ensure_checkpoint("teacher", "runs/nb", patients=train_patients,
                                      config=TeacherTrainConfig(steps=100))
"""
from .api import CHECKPOINT_NAMES, ensure_checkpoint
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig, TrainConfig
from .distributed import DistEnv, gather_weight_hashes, init_distributed, weight_hash
from .evaluate import evaluate_methods, format_summary, method_table, predict_patient, save_table, summarize
from .history import load_history, plot_history, save_history
from .loops import PairDataset, distill_student, fit, resolve_patients, train_baseline, train_teacher

__all__ = [
    "TrainConfig", "TeacherTrainConfig", "BaselineTrainConfig", "DistillConfig",
    "train_teacher", "train_baseline", "distill_student", "fit", "resolve_patients", "PairDataset",
    "evaluate_methods", "predict_patient", "summarize", "method_table", "save_table", "format_summary",
    "save_checkpoint", "load_checkpoint", "load_model", "ensure_checkpoint", "CHECKPOINT_NAMES",
    "save_history", "load_history", "plot_history",
    "DistEnv", "init_distributed", "weight_hash", "gather_weight_hashes",
]
