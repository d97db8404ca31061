#!/usr/bin/env bash
# Starts hearth on a fixture model and runs the official openai Python SDK conformance check
# (openai_sdk.py) against it. Installs the `openai` package with pip when it is missing.
#
#   bash test/conformance/run.sh [MODEL_DIR]        (default test/fixtures/models/llama-f32)
#
# Exits with the check's status; 0 only if every check passed. Needs the native library built
# (deno task build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="${1:-$ROOT/test/fixtures/models/llama-f32}"
PYTHON="${PYTHON:-python3}"
DENO="${DENO:-deno}"

if ! "$PYTHON" -c "import openai" 2>/dev/null; then
  echo "conformance: installing the openai Python package" >&2
  "$PYTHON" -m pip install --quiet openai >&2
fi

WORK="$(mktemp -d -t hearth-conformance-XXXXXX)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Own XDG_CONFIG_HOME: the token file of this server never meets another's.
XDG_CONFIG_HOME="$WORK/xdg" "$DENO" run -A "$ROOT/main.ts" serve --model "$MODEL" --port 0 --threads 1 \
  --log-level WARNING 2>"$WORK/server.log" &
SERVER_PID=$!

PORT=""
for _ in $(seq 1 300); do
  PORT="$(sed -n 's#.*listening on http://[^ ]*:\([0-9][0-9]*\).*#\1#p' "$WORK/server.log" | head -n1)"
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$PORT" ]] || { echo "conformance: server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }

TOKEN_FILE="$WORK/xdg/hearth/inference/$PORT.token"
for _ in $(seq 1 300); do
  if [[ -s "$TOKEN_FILE" ]] && [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" == "200" ]]; then
    break
  fi
  sleep 0.1
done

status=0
HEARTH_URL="http://127.0.0.1:$PORT/v1" HEARTH_TOKEN="$(cat "$TOKEN_FILE")" "$PYTHON" "$ROOT/test/conformance/openai_sdk.py" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log ---" >&2
  cat "$WORK/server.log" >&2
fi
exit $status
