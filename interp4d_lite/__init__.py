"""interp4d_lite: 4D medical image interpolation with a temporal-modulated,
multi-scale deformation-fusion student distilled from a privileged teacher.

Reconstruction of Zhang et al., MICCAI 2025 (doi 10.1007/978-3-032-04984-1_53)
for teaching; see docs/ARCHITECTURE.md for the conventions used everywhere.
"""
from .device import get_device, seed_everything

__version__ = "0.1.0"
__all__ = ["get_device", "seed_everything", "__version__"]
