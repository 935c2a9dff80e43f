// ThumbHash decoding, after the reference implementation by Evan Wallace
// (https://github.com/evanw/thumbhash, MIT licence), as the `thumbhash` crate the resizer uses.
import { el } from "/ui/dom.js";

/** Decodes a ThumbHash (bytes) to `{w, h, rgba}`, at most 32 px on the longer side. */
function thumbHashToRGBA(hash) {
  const { PI, cos, round, max, min } = Math;
  const h24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const h16 = hash[3] | (hash[4] << 8);
  const lDc = (h24 & 63) / 63, pDc = ((h24 >> 6) & 63) / 31.5 - 1, qDc = ((h24 >> 12) & 63) / 31.5 - 1;
  const lScale = ((h24 >> 18) & 31) / 31;
  const hasAlpha = h24 >> 23 !== 0;
  const pScale = ((h16 >> 3) & 63) / 63, qScale = ((h16 >> 9) & 63) / 63;
  const landscape = h16 >> 15 !== 0;
  const lMax = hasAlpha ? 5 : 7;
  const lx = max(3, landscape ? lMax : h16 & 7), ly = max(3, landscape ? h16 & 7 : lMax);
  let pos = 5;
  let aDc = 1, aScale = 1;
  if (hasAlpha) { aDc = (hash[5] & 15) / 15; aScale = (hash[5] >> 4) / 15; pos = 6; }
  let nibble = 0;
  const channel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) {
        const bits = (hash[pos + (nibble >> 1)] >> ((nibble & 1) << 2)) & 15;
        nibble++;
        ac.push((bits / 7.5 - 1) * scale);
      }
    }
    return ac;
  };
  const lAc = channel(lx, ly, lScale);
  const pAc = channel(3, 3, pScale * 1.25);
  const qAc = channel(3, 3, qScale * 1.25);
  const aAc = hasAlpha ? channel(5, 5, aScale) : [];
  const lmin = hash[3] & 7;
  const ratio = (landscape ? lMax : lmin) / (landscape ? lmin : lMax);
  const w = round(ratio > 1 ? 32 : 32 * ratio), h = round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8ClampedArray(w * h * 4);
  const fx = [], fy = [];
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = lDc, p = pDc, q = qDc, a = aDc;
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) fx[cx] = cos((PI / w) * (x + 0.5) * cx);
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) fy[cy] = cos((PI / h) * (y + 0.5) * cy);
      for (let cy = 0, j = 0; cy < ly; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++) l += lAc[j] * fx[cx] * fy2;
      }
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy2;
          p += pAc[j] * f;
          q += qAc[j] * f;
        }
      }
      if (hasAlpha) {
        for (let cy = 0, j = 0; cy < 5; cy++) {
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++) a += aAc[j] * fx[cx] * fy2;
        }
      }
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = max(0, min(1, r)) * 255;
      rgba[i + 1] = max(0, min(1, g)) * 255;
      rgba[i + 2] = max(0, min(1, b)) * 255;
      rgba[i + 3] = max(0, min(1, a)) * 255;
    }
  }
  return { w, h, rgba };
}

const placeholderCache = new Map();
/** A PNG data URL of the base64 ThumbHash `b64`, or null when it cannot be decoded. */
export function thumbHashToDataURL(b64) {
  if (placeholderCache.has(b64)) return placeholderCache.get(b64);
  let url = null;
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    if (bytes.length >= 5) {
      const { w, h, rgba } = thumbHashToRGBA(bytes);
      const canvas = el("canvas", { width: w, height: h });
      canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
      url = canvas.toDataURL();
    }
  } catch (e) {
    url = null;
  }
  placeholderCache.set(b64, url);
  return url;
}
