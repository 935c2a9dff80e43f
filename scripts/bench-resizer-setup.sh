#!/usr/bin/env bash
# What the resizer benchmark (`cargo bench -p imgpipe --bench thumbnail`) needs beyond
# scripts/setup.sh: the peer, `vipsthumbnail` (Debian's libvips-tools), and large real photos, the
# 5120x2880 JPEGs of Debian's plasma-workspace-wallpapers, unpacked into .cache/wallpapers/.
# About 95 MB of download, once; not needed by the tests. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[bench-resizer-setup %3ds] %s\n' "$SECONDS" "$*"; }

if ! command -v vipsthumbnail >/dev/null 2>&1 || [[ ! -x /usr/bin/time ]]; then
    log "installing libvips-tools and time (GNU time, for peak memory) from apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libvips-tools time >/dev/null
fi

OUT=.cache/wallpapers
if ! compgen -G "$OUT/*.jpg" >/dev/null; then
    work=$(mktemp -d)
    chmod 755 "$work" # apt drops to the _apt user to download
    trap 'rm -rf "$work"' EXIT
    log "downloading plasma-workspace-wallpapers (Debian package)"
    (cd "$work" && apt-get download -q plasma-workspace-wallpapers >/dev/null)
    dpkg-deb -x "$work"/plasma-workspace-wallpapers_*.deb "$work/root"
    mkdir -p "$OUT"
    # The largest rendering of each wallpaper that is a photo (JPEG), named after its theme.
    while IFS= read -r -d '' file; do
        theme=$(basename "$(dirname "$(dirname "$(dirname "$file")")")")
        cp "$file" "$OUT/$theme.jpg"
    done < <(find "$work/root" -path '*/contents/images/5120x2880.jpg' -print0)
fi
log "$(find "$OUT" -name '*.jpg' | wc -l) photos in $OUT; $(vipsthumbnail --vips-version)"
