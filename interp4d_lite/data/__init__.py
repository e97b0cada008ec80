"""Phantoms, readers, preprocessing and the triplet dataset (see docs/ARCHITECTURE.md)."""
from .dataset import (
                      Patient4D,
                      TripletDataset,
                      acdc_uvi_split,
                      detect_layout,
                      discover_patients,
                      load_patient,
                      load_patients,
                      split_patients,
)
from .io import (
                      load_acdc_patient,
                      load_lung_patient,
                      read_info_cfg,
                      read_nifti_3d,
                      read_nifti_4d,
                      read_phases_json,
                      read_truth,
)
from .phantoms import (
                      Phantom4D,
                      hu_to_unit,
                      make_cardiac_phantom,
                      make_linear_phantom,
                      make_lung_phantom,
                      make_phantom,
                      write_acdc_layout,
                      write_lung_layout,
                      write_phantom_dataset,
)
from .preprocess import center_crop_or_pad, clip_hu, minmax_per_frame, shift_affine

__all__ = [
    "Phantom4D", "make_cardiac_phantom", "make_lung_phantom", "make_linear_phantom", "make_phantom",
    "write_acdc_layout", "write_lung_layout", "write_phantom_dataset", "hu_to_unit",
    "read_nifti_4d", "read_nifti_3d", "read_info_cfg", "read_phases_json", "read_truth",
    "load_acdc_patient", "load_lung_patient",
    "center_crop_or_pad", "minmax_per_frame", "clip_hu", "shift_affine",
    "Patient4D", "discover_patients", "detect_layout", "load_patient", "load_patients", "split_patients",
    "acdc_uvi_split", "TripletDataset",
]
