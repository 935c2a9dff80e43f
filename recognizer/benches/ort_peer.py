#!/usr/bin/env python3
"""The Python peer of the recognizer benchmark (recognizer/benches/throughput.rs runs it).

Model only: the same ONNX file, run by the `onnxruntime` package with the same thread count on
the very tensors the Rust side made from the previews (raw float32 NCHW, 3x224x224 per image),
so no decoding or resizing is timed here. Prints one JSON line per batch size:
{"batch": B, "images": N, "seconds": S, "images_per_s": R}.

  .venv/bin/python recognizer/benches/ort_peer.py --model M --tensors F --threads 2 \
      --batches 1,8,32 --seconds 5
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort

PLANE = 3 * 224 * 224


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tensors", required=True, help="raw little-endian float32, N x 3x224x224")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per batch size")
    args = parser.parse_args()

    data = np.fromfile(args.tensors, dtype="<f4")
    if data.size == 0 or data.size % PLANE:
        raise SystemExit(f"{args.tensors}: {data.size} floats is not a whole number of images")
    images = data.reshape(-1, 3, 224, 224)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    for batch in (int(b) for b in args.batches.split(",")):
        # The same inputs in the same order as the Rust side: cycle through the images.
        count = max(len(images), batch)
        order = np.arange(count) % len(images)
        batches = [
            np.ascontiguousarray(images[order[i : i + batch]])
            for i in range(0, count - count % batch or batch, batch)
        ]
        for x in batches[:2]:  # warm-up: first runs allocate for this shape
            session.run(None, {name: x})
        done, start = 0, time.perf_counter()
        while True:
            for x in batches:
                session.run(None, {name: x})
                done += len(x)
            elapsed = time.perf_counter() - start
            if elapsed >= args.seconds:
                break
        print(
            json.dumps(
                {
                    "batch": batch,
                    "images": done,
                    "seconds": round(elapsed, 3),
                    "images_per_s": round(done / elapsed, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
