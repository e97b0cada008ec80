"""Thin shims kept for ``python -m data_download.acdc`` / ``.lung4d`` in a clone of the repository.

The downloaders are part of the package (:mod:`interp4d_lite.download`, the
``interp4d-lite download acdc|lung4d`` command); this folder is not installed. See README.md here.
"""
