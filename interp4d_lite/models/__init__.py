"""Models: warping, baselines, teacher and student (see docs/ARCHITECTURE.md).

``build_model(model_kind, config_dict)`` builds any model (the training loops and
``models.checkpoint.load_model`` use it).
"""

from .baselines import (
    InstanceRegistration,
    LinearMotionBaseline,
    RegisteredLinearMotion,
    RegistrationConfig,
    RegistrationNet,
    linear_blend,
    linear_motion_fields,
    linear_motion_interpolate,
)
from .blocks import ConvBlock, Encoder
from .fusion import DeformationFusion, FieldSpaceFusion, FinestLevelHead
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


def build_model(model_kind: str, config: dict | None = None):
    """The one model builder: a freshly initialised model of ``model_kind`` (a key of
    :data:`MODEL_REGISTRY`: ``"student"``, ``"teacher"``, ``"registration"``) from a config
    dict (``Config.to_dict()`` or overrides of the defaults; ``None``/``{}`` = defaults).
    The full config is ``model.config`` (``model.config.to_dict()`` for a checkpoint).
    Raises ``ValueError`` for an unknown model kind or config key.

    >>> build_model("student", {"time_hidden": 8}).config.time_hidden
    8
    """
    if model_kind not in MODEL_REGISTRY:
        raise ValueError(f"unknown model kind {model_kind!r}; known: {sorted(MODEL_REGISTRY)}")
    model_cls, config_cls = MODEL_REGISTRY[model_kind]
    return model_cls(config_cls.from_dict(dict(config or {})))


def count_parameters(model) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "warp",
    "Warper",
    "ConvBlock",
    "Encoder",
    "TimeEmbedding",
    "TemporalModulation",
    "DeformationFeatureGenerator",
    "DeformationFusion",
    "FieldSpaceFusion",
    "FinestLevelHead",
    "Student",
    "StudentConfig",
    "Teacher",
    "TeacherConfig",
    "RegistrationNet",
    "RegistrationConfig",
    "LinearMotionBaseline",
    "InstanceRegistration",
    "RegisteredLinearMotion",
    "linear_blend",
    "linear_motion_fields",
    "linear_motion_interpolate",
    "MODEL_REGISTRY",
    "build_model",
    "count_parameters",
]
