#!/usr/bin/env bash
# On the GPU machine, in the repository root, with .gpu/ carried there (scripts/gpu_pack.sh made it):
# unpacks Deno, node_modules and the libraries, then runs the GPU test and the GPU bench. Logs and the
# bench's cuda.json / cuda.png go to $OUT (the device tool's folder that comes back), else .gpu-out/.
#
#   bash scripts/gpu_run.sh [all|test|bench]      # default all: test:gpu, then bench:cuda
#   bash scripts/gpu_run.sh stage-model           # a call that carried one .gpu-model/part-*: keeps it;
#                                                 #   with every part there, puts SmolLM2 in the cache
#
# Set HEARTH_REBUILD=1 to rebuild lib/libhearth_cuda.so with the machine's own nvcc instead of using the
# carried one (done anyway when the carried library does not load).
set -uo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
R="${OUT:-$PWD/.gpu-out}"
mkdir -p "$R"
export HEARTH_CACHE="${HEARTH_CACHE:-/root/.cache/hearth}"

if [[ "$what" == "stage-model" ]]; then
  P="$HEARTH_CACHE/smollm2-parts"
  mkdir -p "$P" "$HEARTH_CACHE/smollm2"
  cp .gpu-model/part-* .gpu-model/SHA256 "$P/" 2>/dev/null || true
  ls -la "$P"
  if (cd "$P" && cat part-* >../smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.tmp &&
    cd ../smollm2 && mv SmolLM2-135M-Instruct.Q4_1.gguf.tmp SmolLM2-135M-Instruct.Q4_1.gguf &&
    sha256sum -c "$P/SHA256"); then
    echo "gpu_run: SmolLM2 is in $HEARTH_CACHE/smollm2"
  else
    rm -f "$HEARTH_CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    echo "gpu_run: not every part is there yet"
  fi
  exit 0
fi

T=/tmp/hearth-gpu
mkdir -p "$T/bin"
[[ -x "$T/bin/deno" ]] || xz -dc .gpu/deno.xz >"$T/bin/deno" && chmod +x "$T/bin/deno"
export PATH="$T/bin:$PATH" DENO_DIR="$T/deno-dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PYTHONUNBUFFERED=1
[[ -d node_modules/.deno ]] || tar -xJf .gpu/node_modules.tar.xz
mkdir -p lib
for f in libhearth.so libhearth_cuda.so; do
  [[ -f "lib/$f" ]] || xz -dc ".gpu/lib/$f.xz" >"lib/$f"
done
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
  deno --version | head -1
  command -v nvcc cc gcc || true
} 2>&1 | tee "$R/machine.txt"

# The carried CUDA library, unless it does not load here or a rebuild is asked for.
probe='const l = Deno.dlopen("lib/libhearth_cuda.so", { hearth_cuda_device_count: { parameters: [], result: "i32" } });
console.log("CUDA devices:", l.symbols.hearth_cuda_device_count());'
if [[ "${HEARTH_REBUILD:-0}" == "1" ]] || ! deno eval "$probe" 2>&1 | tee -a "$R/machine.txt" | grep -q "devices: [1-9]"; then
  echo "gpu_run: rebuilding lib/libhearth_cuda.so here" | tee -a "$R/machine.txt"
  rm -f lib/obj-cuda/commands.json
  deno run -A build.ts --cuda-only 2>&1 | tee -a "$R/machine.txt"
else
  export HEARTH_CUDA=0 # keep the carried library: build.ts --if-possible then rebuilds only the CPU one
fi

rc=0
if [[ "$what" == "all" || "$what" == "test" ]]; then
  deno task test:gpu 2>&1 | tee "$R/test_gpu.log"
  rc=${PIPESTATUS[0]}
fi
if [[ "$what" == "all" || "$what" == "bench" ]]; then
  deno task bench:cuda --out "$R/" 2>&1 | tee "$R/bench.log"
  brc=${PIPESTATUS[0]}
  ((rc == 0)) && rc=$brc
fi
exit "$rc"
