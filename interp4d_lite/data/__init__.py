"""Phantoms, readers, preprocessing and the triplet dataset (see docs/ARCHITECTURE.md).

Names are imported from their submodule on first use (the CLI parses without torch)."""

from .._lazy import lazy_exports

#: The kinds of data the package knows (phantoms, loaders, ``--data-kind`` flags).
DATA_KINDS = ("cardiac", "lung", "linear")

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".chest_ct": ["CHEST_CTS", "chest_ct_path", "load_chest_ct", "make_chest_series", "write_chest_dataset"],
        ".convert": ["DicomCine", "convert_dicom_cine", "read_dicom_cine"],
        ".dataset": [
            "CineTriplets",
            "MixedTriplets",
            "Patient4D",
            "TripletDataset",
            "acdc_uvi_split",
            "detect_layout",
            "discover_patients",
            "load_patient",
            "load_patients",
            "split_patients",
        ],
        ".io": [
            "load_acdc_patient",
            "load_series",
            "load_lung_patient",
            "read_info_cfg",
            "read_nifti",
            "read_nifti_frames",
            "read_nifti_3d",
            "read_nifti_4d",
            "read_phases_json",
            "read_truth",
        ],
        ".phantoms": [
            "Phantom4D",
            "hu_to_unit",
            "make_cardiac_phantom",
            "make_linear_phantom",
            "make_lung_phantom",
            "make_phantom",
            "write_acdc_layout",
            "write_lung_layout",
            "write_phantom_dataset",
        ],
        ".real_cine": [
            "REAL_CINE_ID",
            "REAL_CINE_IDS",
            "downsample_in_plane",
            "end_systole_frame",
            "load_real_cine",
            "load_real_cines",
            "read_cine_nifti",
            "real_cine_path",
            "real_cine_paths",
            "write_real_cine",
            "shipped_real_cines",
            "write_real_cine_dataset",
        ],
        ".preprocess": [
            "center_crop_or_pad",
            "clip_hu",
            "guess_data_kind",
            "minmax_per_frame",
            "normalize_scan",
            "shift_affine",
        ],
        ".windows": ["Window", "cine_windows"],
    },
)
__all__ = ["DATA_KINDS", *__all__]
