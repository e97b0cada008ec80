"""Figures and interactive tools of the notebooks.

* :mod:`interp4d_lite.viz.plots`: static matplotlib figures (slices, comparisons, fusion
  weights, FiLM parameters, feature maps, metrics against t);
* :mod:`interp4d_lite.viz.fields`: figures of motion (displacement against t, the views of a
  deformation field, motion over time of several methods) and the voxels worth following;
* :mod:`interp4d_lite.viz.diagrams`: the models drawn as boxes and arrows (the student, the
  distillation data flow), from a config and the training recipe;
* :mod:`interp4d_lite.viz.widgets`: the ipywidgets tools (slice viewer, deformation
  viewer, live interpolation explorer, method comparison, motion over time).

Every public name of all three is available here (``from interp4d_lite import viz;
viz.plot_comparison(...)``). Nothing here computes metrics: evaluation lives in
:mod:`interp4d_lite.train.evaluate`, whose results frame the plots draw, and
``viz.jacobian_determinant`` is :func:`interp4d_lite.metrics.jacobian_determinant` itself
(imported, with torch, on first use).
"""

from .._lazy import lazy_exports
from .diagrams import TERM_MEANINGS, plot_distillation_diagram, plot_student_diagram
from .fields import (
    MOTION_STYLES,
    plot_backward_warp,
    plot_displacement_curves,
    plot_field_views,
    plot_motion_over_time,
    strongest_motion_points,
)
from .plots import (
    AXIS_NAMES,
    INTENSITY_LABEL,
    METHOD_COLOURS,
    film_parameters,
    plot_comparison,
    plot_feature_maps,
    plot_film,
    plot_metric_vs_t,
    plot_scale_weights,
    plot_volumes,
    save_figure,
    show_slice,
    slice_extent,
    take_slice,
    to_numpy,
)
from .widgets import (
    DeformationViewer,
    InterpolationExplorer,
    MethodComparison,
    MotionOverTimeViewer,
    SliceViewer,
    predictions_by_method,
    render_deformation_view,
    render_interpolation,
    render_method_comparison,
    render_slice_view,
    window_level,
)

__getattr__, __dir__, _ = lazy_exports(__name__, {"..metrics": ["jacobian_determinant"]})

__all__ = [
    "AXIS_NAMES",
    "INTENSITY_LABEL",
    "METHOD_COLOURS",
    "to_numpy",
    "take_slice",
    "slice_extent",
    "show_slice",
    "save_figure",
    "plot_volumes",
    "plot_comparison",
    "plot_displacement_curves",
    "plot_backward_warp",
    "jacobian_determinant",
    "plot_field_views",
    "plot_motion_over_time",
    "plot_student_diagram",
    "plot_distillation_diagram",
    "TERM_MEANINGS",
    "MOTION_STYLES",
    "plot_scale_weights",
    "plot_film",
    "plot_feature_maps",
    "plot_metric_vs_t",
    "film_parameters",
    "strongest_motion_points",
    "SliceViewer",
    "DeformationViewer",
    "InterpolationExplorer",
    "MethodComparison",
    "MotionOverTimeViewer",
    "predictions_by_method",
    "render_slice_view",
    "render_deformation_view",
    "render_interpolation",
    "render_method_comparison",
    "window_level",
]
