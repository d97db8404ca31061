#!/usr/bin/env bash
# Prepares the folder the GPU machine needs, .gpu/ (git-ignored through .git/info/exclude), for one
# `device` call that carries it: that machine reaches no registry, so Deno and the npm dependencies
# travel with the working tree, and the libraries are built here (glibc 2.36, so they load on newer
# systems) with nvcc from PyPI.
#
#   bash scripts/gpu_pack.sh            # .gpu/: deno.xz (~31 MB), node_modules.tar.xz, lib/*.so.xz
#   bash scripts/gpu_pack.sh --model    # also .gpu-model/part-*: SmolLM2 (98 MB) in pieces that fit a
#                                       #   call each, for the real-model tests (docs/cuda.md)
#
# Then, on the device machine (one call, carry [".gpu"]): bash scripts/gpu_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

exclude=.git/info/exclude
for p in /.gpu/ /.gpu-model/ /.gpu-out/; do
  grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"
done

rm -rf .gpu
mkdir -p .gpu/lib

# Deno: the binary of the npm package (or whatever `deno` is), xz-compressed below the 64 MiB a call carries.
DENO_BIN="$(readlink -f "$(command -v deno)")"
echo "gpu_pack: compressing $DENO_BIN" >&2
xz -T0 -9 -c "$DENO_BIN" >.gpu/deno.xz

# npm dependencies, vendored: Deno runs from node_modules/ without a registry.
deno install >&2
tar -cf - node_modules | xz -T0 -6 >.gpu/node_modules.tar.xz

# The libraries: CPU, and CUDA for sm_80/86/89/90 (nvcc from PyPI unless one is on PATH).
export HEARTH_NVCC="${HEARTH_NVCC:-$(command -v nvcc || bash scripts/fetch_nvcc.sh)}"
unset HEARTH_CUDA_ARCHS
deno run -A build.ts >&2
for f in lib/libhearth.so lib/libhearth_cuda.so; do xz -T0 -6 -c "$f" >".gpu/$f.xz"; done

if [[ "${1:-}" == "--model" ]]; then
  GGUF="$(bash scripts/fetch_smollm2.sh)"
  rm -rf .gpu-model
  mkdir -p .gpu-model
  split -b 48M -d "$GGUF" .gpu-model/part-
  (cd "$(dirname "$GGUF")" && sha256sum "$(basename "$GGUF")") >.gpu-model/SHA256
  ls -la .gpu-model >&2
fi

du -b .gpu/* .gpu/lib/* >&2
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
gpu_bytes=$(du -sb .gpu | cut -f1)
echo "gpu_pack: working tree $((tree_bytes / 1048576)) MiB + .gpu $((gpu_bytes / 1048576)) MiB (a call carries 64 MiB)" >&2
if ((tree_bytes + gpu_bytes > 64 * 1048576)); then
  echo "gpu_pack: too large for one call" >&2
  exit 1
fi
