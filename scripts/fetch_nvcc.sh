#!/usr/bin/env bash
# Installs CUDA's compiler from PyPI wheels (nvidia-cuda-nvcc, -crt, -runtime, nvidia-nvvm, pinned to
# CUDA 13.0, the version of the 580 drivers) into ${HEARTH_CACHE:-$HOME/.cache/hearth}/cuda-<version>/,
# outside git, and prints the absolute path of nvcc on stdout (all other output goes to stderr).
# Idempotent: prints the path at once when the toolkit is already there.
#
#   NVCC="$(bash scripts/fetch_nvcc.sh)" && deno task build     # build.ts also reads $HEARTH_NVCC
#
# The wheels hold nvcc, cicc, ptxas, fatbinary, nvlink, the CUDA headers (and CCCL's, which cuda_fp16.h
# includes) and libcudart_static.a: enough
# to build lib/libhearth_cuda.so (no driver or GPU is needed to compile).
set -euo pipefail

VERSION="${HEARTH_CUDA_WHEELS:-13.0.88}"
CCCL_VERSION="${HEARTH_CUDA_CCCL_WHEEL:-13.0.85}" # CUDA C++ core libraries (nv/target, cuda/std): own numbering
CACHE="${HEARTH_CACHE:-$HOME/.cache/hearth}"
DEST="$CACHE/cuda-$VERSION"
NVCC="$DEST/nvidia/cu13/bin/nvcc"

if [[ -x "$NVCC" && -f "$DEST/.complete" ]]; then
  echo "$NVCC"
  exit 0
fi

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
PIP="${PIP:-python3 -m pip}"
$PIP install --quiet --no-deps --no-compile --disable-pip-version-check --target "$DEST.tmp" \
  "nvidia-cuda-nvcc==$VERSION" "nvidia-cuda-crt==$VERSION" "nvidia-cuda-runtime==$VERSION" \
  "nvidia-nvvm==$VERSION" "nvidia-cuda-cccl==$CCCL_VERSION" 1>&2

T="$DEST.tmp/nvidia/cu13"
if [[ ! -x "$T/bin/nvcc" ]]; then
  echo "fetch_nvcc: no nvcc in the nvidia-cuda-nvcc==$VERSION wheel" >&2
  exit 1
fi
# nvcc looks for cicc under nvvm/bin and for the libraries under lib64 (nvcc.profile), beside bin/.
[[ -e "$T/lib64" ]] || ln -s lib "$T/lib64"
[[ -e "$T/nvvm/lib64" ]] || { mkdir -p "$T/nvvm"; ln -s ../lib "$T/nvvm/lib64"; }
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
touch "$DEST/.complete"
echo "$NVCC"
