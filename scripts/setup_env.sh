#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine: system libraries (Mesa EGL/OSMesa
# for headless rendering, libusb for open3d, Xvfb and Mesa's Vulkan driver for the Rerun
# viewer's screenshots on a machine without a display), a virtualenv in .venv, torch (CPU build where no
# CUDA GPU is present) and the project itself in editable mode with its dev extras (pytest,
# and the ros, viewer, cluster and coco extras: rosbags, rerun-sdk, Ray, pycocotools, which
# the tests cover).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

# --- system packages -------------------------------------------------------------------------
APT_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libosmesa6 libusb-1.0-0 libglib2.0-0
          xvfb xauth mesa-vulkan-drivers"
missing=""
if command -v dpkg >/dev/null 2>&1; then
  for p in $APT_PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "setup: need root to install$missing; run: sudo apt-get install -y$missing" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- python environment ----------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP="$VENV/bin/pip"
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: CUDA GPU found, installing torch==$TORCH_VERSION (CUDA build)"
  else
    echo "setup: no CUDA GPU, installing torch==$TORCH_VERSION (CPU build where available)"
  fi
  "$PIP" install -q "torch==$TORCH_VERSION"
fi
stamp="$VENV/.simdata-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project (editable, with dev extras)"
  "$PIP" install -q -e ".[dev]"
  touch "$stamp"
fi
# pyrender pins PyOpenGL 3.1.0, whose OSMesa binding lacks OSMesaCreateContextAttribs: the
# OSMesa fallback needs 3.1.7 (EGL works with both). Installed over the pin on purpose.
if ! "$VENV/bin/python" -c "import OpenGL, sys; sys.exit(OpenGL.__version__ != '3.1.7')" 2>/dev/null; then
  "$PIP" install -q --no-deps "PyOpenGL==3.1.7" 2>&1 | grep -v "dependency conflicts\|requires PyOpenGL" || true
fi
"$VENV/bin/python" -c "import open3d, pybullet, pyrender, trimesh, cv2, torch, ray, pycocotools, rosbags, rerun" \
  || { echo "setup: an import failed after installation; see the error above" >&2; exit 1; }
if [ "$(uname -m)" = x86_64 ]; then  # pyproject.toml installs it where it has wheels
  "$VENV/bin/python" -c "import OpenGL_accelerate" \
    || { echo "setup: PyOpenGL-accelerate failed to import; see the error above" >&2; exit 1; }
fi
echo "setup: ready ($VENV)"
