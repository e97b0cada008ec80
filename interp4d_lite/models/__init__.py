"""Models: warping, baselines, teacher and student (see docs/ARCHITECTURE.md).

``build_model(kind, config_dict)`` rebuilds any model from a checkpoint's config.
"""
from .baselines import (
    LinearMotionBaseline,
    RegistrationConfig,
    RegistrationNet,
    linear_blend,
    linear_motion_fields,
    linear_motion_interpolate,
)
from .blocks import ConvBlock, Encoder
from .fusion import DeformationFusion
from .generator import DeformationFeatureGenerator
from .student import Student, StudentConfig
from .teacher import Teacher, TeacherConfig
from .temporal import TemporalModulation, TimeEmbedding
from .warp import Warper, warp

MODEL_REGISTRY = {
    "student": (Student, StudentConfig),
    "teacher": (Teacher, TeacherConfig),
    "registration": (RegistrationNet, RegistrationConfig),
}


def build_model(kind: str, config_dict: dict | None = None):
    """``build_model("student", cfg.to_dict())`` -> a freshly initialised model."""
    if kind not in MODEL_REGISTRY:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_REGISTRY)}")
    model_cls, config_cls = MODEL_REGISTRY[kind]
    return model_cls(config_cls.from_dict(config_dict or {}))


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "warp", "Warper", "ConvBlock", "Encoder", "TimeEmbedding", "TemporalModulation",
    "DeformationFeatureGenerator", "DeformationFusion", "Student", "StudentConfig",
    "Teacher", "TeacherConfig", "RegistrationNet", "RegistrationConfig", "LinearMotionBaseline",
    "linear_blend", "linear_motion_fields", "linear_motion_interpolate",
    "MODEL_REGISTRY", "build_model", "count_parameters",
]
