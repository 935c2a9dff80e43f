#!/usr/bin/env bash
# Puts the PP-OCR text detection and recognition models (ONNX) in models/ocr/, taken from the
# PyPI wheel of rapidocr (never from a model hub). Called by models/build.sh; idempotent, run
# from anywhere:
#   bash models/ocr.sh
# The wheel is cached in .cache/models/wheels/; files already in place with the pinned sha256
# are kept, so a second run takes a fraction of a second. The recognition model's character
# list stays inside it (ONNX metadata key `character`); the Rust side reads it from there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=models/venv.sh
source models/venv.sh

CACHE=.cache/models
PY=.venv/bin/python
OUT=models/ocr

PKG=rapidocr==3.10.0
# member of the wheel, file name in $OUT, sha256
FILES=(
    "rapidocr/models/PP-OCRv6_det_small.onnx PP-OCRv6_det_small.onnx 090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"
    "rapidocr/models/PP-OCRv6_rec_small.onnx PP-OCRv6_rec_small.onnx 6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"
    "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md MODEL_LICENSES.md c5fd0e8603d3df743355b546121e6fe0f4ef8ff455c5a85c1681fd3ae520e153"
    "rapidocr-3.10.0.dist-info/licenses/LICENSE LICENSE 3e0af25fdd06aa9586ae97adb00ea927ebe5a3805ac77d2d3a81ce5f55693333"
)

log() { printf '[models/ocr.sh %3ds] %s\n' "$SECONDS" "$*"; }

# has_sha FILE SHA: true when FILE exists with that sha256.
has_sha() { [[ -f $1 ]] && echo "$2  $1" | sha256sum -c --quiet - >/dev/null 2>&1; }

# wheel: path of the cached rapidocr wheel, downloading it (no deps) first.
wheel() {
    local name=${PKG%%==*} version=${PKG##*==} found
    found=$(compgen -G "$CACHE/wheels/$name-$version-*.whl" | head -n1 || true)
    if [[ -z $found ]]; then
        log "downloading $PKG" >&2
        "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$CACHE/wheels" "$PKG" >&2
        found=$(compgen -G "$CACHE/wheels/$name-$version-*.whl" | head -n1)
    fi
    echo "$found"
}

todo=()
for entry in "${FILES[@]}"; do
    read -r member file sha <<<"$entry"
    has_sha "$OUT/$file" "$sha" || todo+=("$member" "$OUT/$file")
done
if ((${#todo[@]} == 0)); then
    log "$OUT is up to date"
    exit 0
fi

ensure_venv "$ROOT"
mkdir -p "$CACHE/wheels" "$OUT"
whl=$(wheel)
log "extracting $((${#todo[@]} / 2)) files from $(basename "$whl")"
"$PY" - "$whl" "${todo[@]}" <<'PY'
import os, sys, zipfile
wheel, *pairs = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for member, dest in zip(pairs[::2], pairs[1::2]):
        with open(dest + ".tmp", "wb") as f:
            f.write(z.read(member))
        os.replace(dest + ".tmp", dest)
PY
for entry in "${FILES[@]}"; do
    read -r member file sha <<<"$entry"
    if ! has_sha "$OUT/$file" "$sha"; then
        echo "error: $OUT/$file ($PKG, $member) does not have sha256 $sha; removed it" >&2
        rm -f "$OUT/$file"
        exit 1
    fi
done
log "done: $OUT/PP-OCRv6_det_small.onnx, $OUT/PP-OCRv6_rec_small.onnx"
