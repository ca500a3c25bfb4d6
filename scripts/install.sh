#!/usr/bin/env bash
# Install dreamlite into a virtual environment (default: ./.venv; set VENV=... to choose another).
#
# torch comes first and pinned: a bare `torch` requirement resolves to the newest release, which on Linux
# is a multi-GB CUDA build. If the environment already has a torch (say a CUDA build you chose), it is kept;
# otherwise torch==${DREAMLITE_TORCH_VERSION:-2.13.0} is installed (a CPU wheel where the platform's pip
# provides one, e.g. this project's reference laptops; the standard wheel elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install --quiet "torch==${DREAMLITE_TORCH_VERSION:-2.13.0}"
fi
"$PY" -m pip install --quiet -e ".[dev,app,deploy]"
"$PY" -c "import torch, diffusers, dreamlite; print(f'dreamlite {dreamlite.__version__} installed in $VENV (torch {torch.__version__}, diffusers {diffusers.__version__})')"
