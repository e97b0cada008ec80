"""Training, evaluation, checkpoints and distributed running (see docs/ARCHITECTURE.md).

Notebook use::

    from interp4d_lite.train import ensure_checkpoint, load_model, plot_history
    teacher, hist = ensure_checkpoint("teacher", "runs/nb", patients=train_patients,
                                      config=TeacherTrainConfig(steps=100))

Names are imported from their submodule on first use (the CLI parses without torch).
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".api": ["ensure_checkpoint", "load_finished"],
        ".checkpoint": ["load_checkpoint", "load_model", "save_checkpoint"],
        ".config": ["BaselineTrainConfig", "DistillConfig", "TeacherTrainConfig", "TrainConfig"],
        ".distributed": ["DistEnv", "gather_weight_hashes", "init_distributed", "weight_hash"],
        ".evaluate": [
            "classical_methods",
            "evaluate_methods",
            "format_summary",
            "fusion_weights",
            "method_table",
            "predict_patient",
            "save_table",
            "summarize",
        ],
        ".motion": [
            "MotionCurves",
            "displacement_curves",
            "fields_over_time",
            "motion_over_time",
            "motion_region",
            "reference_fields",
            "reference_label",
            "with_reference_fields",
        ],
        ".history": ["load_history", "plot_history", "save_history"],
        ".datasets": [
            "CachedTargets",
            "PairDataset",
            "compute_targets",
            "real_and_phantom_triplets",
            "resolve_patients",
        ],
        ".loops": ["distill_student", "fit", "train_baseline", "train_loop", "train_teacher", "with_targets"],
        ".recipes": [
            "RECIPES",
            "Recipe",
            "Term",
            "get_recipe",
            "recipe_names",
            "register_recipe",
            "term_weights",
            "training_step",
        ],
    },
)
