#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment.
#   bash scripts/setup_env.sh [VENV_DIR]
# * picks python3.11 when present, else python3;
# * installs PyTorch first: the CUDA build from PyPI when an NVIDIA GPU answers
#   `nvidia-smi -L`, otherwise the CPU build (a local CPU wheel when pip can see
#   one, else PyTorch's CPU index); an importable torch is never replaced;
# * installs this package in editable mode with its dev extras.
# Idempotent: the Makefile only calls it when pyproject.toml changed.
set -euo pipefail
VENV=${1:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "[setup] torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already installed, kept"
elif nvidia-smi -L >/dev/null 2>&1; then
    echo "[setup] NVIDIA GPU found: installing the CUDA build of torch"
    "${PIP[@]}" install "torch>=2.2"
else
    tmp=$(mktemp -d)
    if "${PIP[@]}" download -q --no-deps --no-index -d "$tmp" "torch==${TORCH_VERSION}" >/dev/null 2>&1 \
        && ls "$tmp"/torch-*+cpu-*.whl >/dev/null 2>&1; then
        echo "[setup] no GPU: installing the local CPU build torch==${TORCH_VERSION}+cpu"
        "${PIP[@]}" install "$tmp"/torch-*.whl
    else
        echo "[setup] no GPU: installing the CPU build of torch from ${TORCH_CPU_INDEX}"
        "${PIP[@]}" install "torch==${TORCH_VERSION}" --index-url "$TORCH_CPU_INDEX" --extra-index-url https://pypi.org/simple
    fi
    rm -rf "$tmp"
fi

echo "[setup] installing interp4d_lite (editable, with dev extras)"
"${PIP[@]}" install -q -e ".[dev]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (interp4d_lite)" >/dev/null
echo "[setup] done: $("$VENV/bin/python" -c 'import torch, monai; print("torch", torch.__version__, "| cuda", torch.cuda.is_available(), "| monai", monai.__version__)')"
