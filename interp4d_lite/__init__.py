"""interp4d_lite: 4D medical image interpolation with a temporal-modulated,
multi-scale deformation-fusion student distilled from a privileged teacher.

Reconstruction of Zhang et al., MICCAI 2025 (doi 10.1007/978-3-032-04984-1_53)
for teaching; see docs/ARCHITECTURE.md for the conventions used everywhere.
``get_device`` and ``seed_everything`` (and torch) are imported on first use.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"
__getattr__, __dir__, __all__ = lazy_exports(
    __name__, {".device": ["get_device", "seed_everything"], ".weights": ["pretrained"]}
)
__all__ = [*__all__, "__version__"]
