"""The first cell of every tutorial notebook, word for word (tests/test_notebooks_clean.py
checks each notebook against it).

With interp4d_lite importable it does nothing; on a hosted kernel without it (Colab, a
JupyterHub) it installs the package from ``INSTALL_SOURCE``, and on Colab it enables the
custom widget manager that the interactive tools of 05_visualizers need.
"""

from __future__ import annotations

__all__ = ["SETUP_CELL"]

SETUP_CELL = """\
# Set-up, the same first cell in every notebook. Where interp4d_lite is installed (a clone's
# .venv, a course image) it does nothing. On Colab or a JupyterHub without it, it installs the
# package from INSTALL_SOURCE (set the environment variable INTERP4D_LITE_SOURCE to a wheel, a
# folder or a git URL to install from elsewhere); on Colab it also turns on the widget manager
# that the interactive tools need.
import importlib.util
import os
import sys

INSTALL_SOURCE = os.environ.get("INTERP4D_LITE_SOURCE", "interp4d-lite")
if importlib.util.find_spec("interp4d_lite") is None:
    %pip install --quiet {INSTALL_SOURCE}
    importlib.invalidate_caches()
if "google.colab" in sys.modules:
    from google.colab import output

    output.enable_custom_widget_manager()"""
