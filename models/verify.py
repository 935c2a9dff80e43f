#!/usr/bin/env python3
"""Classify images with the EfficientNet-Lite0 ONNX model and print the top-k.

One JSON object per image on stdout:
  {"path": ..., "top": [{"index": i, "label": ..., "score": p}, ...]}
Scores are softmax probabilities of the raw logits.

Preprocessing (the same as the Rust side): apply the EXIF orientation, convert
to RGB, resize so the shorter side is 256 (bilinear, the longer side rounded
to the nearest pixel), centre crop 224x224 (offset (size - 224) // 2), NCHW
float32, (x - 127) / 128.

--expect PATH=LABEL (repeatable) makes the exit status non-zero unless LABEL
is among the top-k of PATH. --bench N times N batch-1 runs instead.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, "efficientnet-lite0.onnx")
DEFAULT_LABELS = os.path.join(HERE, "efficientnet-lite0.labels.txt")
RESIZE, CROP = 256, 224


def preprocess(path, exif=True):
    img = Image.open(path)
    if exif:
        img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = RESIZE, max(RESIZE, round(h * RESIZE / w))
    else:
        nw, nh = max(RESIZE, round(w * RESIZE / h)), RESIZE
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - CROP) // 2, (nh - CROP) // 2
    img = img.crop((left, top, left + CROP, top + CROP))
    x = np.asarray(img, dtype=np.float32)
    x = (x - 127.0) / 128.0
    return x.transpose(2, 0, 1)[None]


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def session(model, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--labels", default=DEFAULT_LABELS)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-exif", action="store_true", help="ignore the EXIF orientation tag")
    ap.add_argument("--expect", action="append", default=[], metavar="PATH=LABEL")
    ap.add_argument("--bench", type=int, default=0, metavar="N", help="time N batch-1 runs")
    args = ap.parse_args()

    labels = open(args.labels, encoding="utf-8").read().splitlines()
    sess = session(args.model, args.threads)
    expected = {}
    for e in args.expect:
        path, _, label = e.partition("=")
        if label not in labels:
            ap.error(f"--expect: {label!r} is not a label")
        expected.setdefault(path, []).append(label)
    paths = list(dict.fromkeys(args.images + list(expected)))

    if args.bench:
        x = preprocess(paths[0]) if paths else np.zeros((1, 3, CROP, CROP), np.float32)
        for _ in range(10):
            sess.run(["logits"], {"input": x})
        t0 = time.perf_counter()
        for _ in range(args.bench):
            sess.run(["logits"], {"input": x})
        dt = (time.perf_counter() - t0) / args.bench
        print(json.dumps({"threads": args.threads, "batch": 1, "ms_per_image": round(dt * 1e3, 3), "images_per_s": round(1 / dt, 1)}))
        return 0

    failed = []
    for path in paths:
        logits = sess.run(["logits"], {"input": preprocess(path, exif=not args.no_exif)})[0][0]
        probs = softmax(logits.astype(np.float64))
        top = np.argsort(-probs)[: args.k]
        result = [{"index": int(i), "label": labels[i], "score": round(float(probs[i]), 6)} for i in top]
        print(json.dumps({"path": path, "top": result}), flush=True)
        got = {r["label"] for r in result}
        for want in expected.get(path, []):
            if want not in got:
                failed.append(f"{path}: expected {want!r} in top-{args.k}, got {[r['label'] for r in result]}")
    for f in failed:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
