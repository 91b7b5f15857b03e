#!/usr/bin/python3
"""crosscheck-torch.py - `nabla forward --grad` against PyTorch on random models.

Generates random networks as nabla model files (sequential models of conv2d,
pooling, batch norm, layer norm, group norm, activations, dropout,
conv_transpose2d, upsample, flatten, linear and global average pooling; conv1d
models; flat models; graph-form models with
residual `add` and channel `concat`), random weights saved with PyTorch's
names and layouts, a random batch and labels for the model's loss
(cross_entropy, mse, hinge, or none).  Runs `nabla forward --grad` in f32
and in f64, builds the same network in PyTorch with the same weights, and
compares the output, the loss and every gradient (input and parameters):

    |nabla - torch| <= tol * max(1, |torch|)   element by element,

with tol 1e-4 for f32 and 1e-9 for f64.  f64 is compared with PyTorch in
float64; f32 with PyTorch in float32 or in float64, whichever is closer
(where a value is pure cancellation, such as the gradient of a bias that
feeds a batch norm, which is 0 plus rounding, float32's rounding noise is
no reference).  Models are run in eval mode; models with
batch norm, layer norm or group norm and no dropout are also run in
train mode (batch statistics; the same for the other two) and compared
the same way; models with dropout are run in train mode too,
but only the shapes are compared (the masks come from different
generators).

Prints one line per model, then how many models exercised each layer
type, activation and kernel-choosing setting (and how many of them
failed), then "N passed, N failed".  Run by hand, never by
make check:

    scripts/crosscheck-torch.py [--count 200] [--seed 0] [--keep DIR]
                                [--nabla build/tools/nabla]

--keep DIR keeps each failing case in DIR/case-<k>/: the model, the weights,
the input, the labels, nabla's outputs, PyTorch's (torch-f32/f64
.safetensors, same names) and the command lines to run it again.

No safetensors package is needed: the format is read and written here.
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- safetensors -------------------------------------------------------------

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64,
             "I32": np.int32, "F16": np.float16}
TORCH_TO_ST = {torch.float32: "F32", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32"}


def st_save(path, tensors):
    """An 8-byte little-endian header length, the JSON header, the data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_load(path):
    """name -> torch tensor, in the file's dtype."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        dt = np.dtype(ST_DTYPES[e["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(data[8 + n + a:8 + n + b], dtype=dt).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("=")).copy())
    return out


# ---- random models -------------------------------------------------------------
# A model is the JSON written for nabla; each layer also carries "_in": the
# shapes (one example) of its inputs, for building the PyTorch twin.  Keys
# starting with "_" are removed from the file.

ACTIVATIONS = ["relu", "leaky_relu", "elu", "relu6", "sigmoid", "tanh", "softmax", "gelu", "silu",
               "hardswish", "softplus"]


def conv_out(size, k, s, p, d=1):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.count = 0

    def pick(self, *xs):
        return self.r.choice(xs)

    def maybe_pair(self, a, b):
        """An int when both agree (or by chance), else the pair."""
        if a == b and self.r.random() < 0.7:
            return a
        return [a, b]

    def name(self, prefix):
        self.count += 1
        return "%s%d" % (prefix, self.count)

    # Each layer maker takes the input shape and returns (layer, out shape),
    # or None when it does not fit.

    def activation(self, shape):
        t = self.pick(*ACTIVATIONS)
        layer = {"type": t}
        if t == "leaky_relu" and self.r.random() < 0.7:
            layer["negative_slope"] = round(self.r.uniform(0.01, 0.5), 3)
        if t == "elu" and self.r.random() < 0.7:
            layer["alpha"] = round(self.r.uniform(0.2, 2.0), 3)
        if t == "gelu" and self.r.random() < 0.7:
            layer["approximate"] = self.pick("none", "tanh", "tanh")
        if t == "softplus":
            if self.r.random() < 0.6:
                layer["beta"] = round(self.r.uniform(0.5, 3.0), 3)
            if self.r.random() < 0.6:  # low enough for some inputs to cross it
                layer["threshold"] = round(self.r.uniform(-1.0, 3.0), 3)
        if t == "softmax":
            k = len(shape)
            dim = self.r.randint(1, k)
            if self.r.random() < 0.3:
                dim -= k + 1  # the same dimension counted from the end
            if dim != 1 or self.r.random() < 0.5:
                layer["dim"] = dim
        return layer, shape

    def act_field(self, layer):
        if self.r.random() < 0.4:
            layer["activation"] = self.pick("relu", "sigmoid", "tanh", "relu6", "elu",
                                            "leaky_relu", "softmax", "gelu", "silu",
                                            "hardswish", "softplus")

    def conv_groups(self, layer, C, out_channels):
        """Sometimes groups (a divisor of C; C itself, depthwise, half of
        those times), out_channels then a multiple of it; returns it."""
        if out_channels is not None or C < 2 or self.r.random() < 0.7:
            return 1
        divs = [g for g in range(2, C + 1) if C % g == 0]
        g = C if self.r.random() < 0.5 else self.r.choice(divs)
        layer["groups"] = g
        layer["out_channels"] = g * self.r.randint(1, 2)
        return g

    def dilation(self, room_h, room_w, kh, kw):
        """Sometimes a dilation of 2 or 3 per axis that still fits."""
        if self.r.random() < 0.75:
            return 1, 1
        dh = self.r.choice([d for d in (1, 2, 3) if d * (kh - 1) + 1 <= room_h])
        dw = self.r.choice([d for d in (1, 2, 3) if d * (kw - 1) + 1 <= room_w])
        return dh, dw

    def conv2d(self, shape, same=None, out_channels=None):
        C, H, W = shape
        layer = {"type": "conv2d", "out_channels": out_channels or self.r.randint(1, 6)}
        if self.r.random() < 0.2:
            layer["in_channels"] = C
        self.conv_groups(layer, C, out_channels)
        use_same = same if same is not None else self.r.random() < 0.2
        if use_same:
            kh, kw = self.r.randint(1, 5), self.r.randint(1, 5)
            layer["kernel_size"] = self.maybe_pair(kh, kw)
            layer["padding"] = "same"
            if self.r.random() < 0.3:
                layer["stride"] = 1
            dh, dw = self.dilation(99, 99, kh, kw)
            if (dh, dw) != (1, 1):
                layer["dilation"] = self.maybe_pair(dh, dw)
            out = [layer["out_channels"], H, W]
        else:
            ph, pw = self.r.randint(0, 2), self.r.randint(0, 2)
            if self.r.random() < 0.4:
                ph = pw = 0
            kh = self.r.randint(1, min(5, H + 2 * ph))
            kw = self.r.randint(1, min(5, W + 2 * pw))
            sh, sw = self.r.randint(1, 3), self.r.randint(1, 3)
            if self.r.random() < 0.5:
                sh = sw = 1
            layer["kernel_size"] = self.maybe_pair(kh, kw)
            if (sh, sw) != (1, 1) or self.r.random() < 0.2:
                layer["stride"] = self.maybe_pair(sh, sw)
            if (ph, pw) != (0, 0) or self.r.random() < 0.2:
                layer["padding"] = self.maybe_pair(ph, pw)
            if (ph, pw) == (0, 0) and self.r.random() < 0.2:
                layer["padding"] = "valid"
            dh, dw = self.dilation(H + 2 * ph, W + 2 * pw, kh, kw)
            if (dh, dw) != (1, 1):
                layer["dilation"] = self.maybe_pair(dh, dw)
            out = [layer["out_channels"], conv_out(H, kh, sh, ph, dh), conv_out(W, kw, sw, pw, dw)]
        if self.r.random() < 0.3:
            layer["bias"] = self.r.random() < 0.5
        self.act_field(layer)
        return layer, out

    def conv_transpose2d(self, shape):
        """Small kernels, stride 2 only on small inputs, padding at most half
        the dilated kernel (so the output never shrinks below the input)."""
        C, H, W = shape
        g = self.pick(*[d for d in (1, 2, 3, C) if C % d == 0]) if self.r.random() < 0.4 else 1
        layer = {"type": "conv_transpose2d", "out_channels": g * self.r.randint(1, 3)}
        if self.r.random() < 0.2:
            layer["in_channels"] = C
        kh, kw = self.r.randint(1, 3), self.r.randint(1, 3)
        sh = self.r.randint(1, 2) if H <= 8 else 1
        sw = self.r.randint(1, 2) if W <= 8 else 1
        dh, dw = (2, 2) if self.r.random() < 0.2 else (1, self.pick(1, 1, 2))
        ph, pw = self.r.randint(0, dh * (kh - 1) // 2), self.r.randint(0, dw * (kw - 1) // 2)
        oph = self.r.randint(0, max(sh, dh) - 1) if self.r.random() < 0.4 else 0
        opw = self.r.randint(0, max(sw, dw) - 1) if self.r.random() < 0.4 else 0
        layer["kernel_size"] = self.maybe_pair(kh, kw)
        for key, (a, b), default in (("stride", (sh, sw), 1), ("padding", (ph, pw), 0),
                                     ("output_padding", (oph, opw), 0), ("dilation", (dh, dw), 1)):
            if (a, b) != (default, default) or self.r.random() < 0.1:
                layer[key] = self.maybe_pair(a, b)
        if g > 1 or self.r.random() < 0.1:
            layer["groups"] = g
        if self.r.random() < 0.3:
            layer["bias"] = self.r.random() < 0.5
        self.act_field(layer)
        out = [layer["out_channels"], (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1,
               (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1]
        return layer, out

    def conv1d(self, shape):
        C, L = shape
        layer = {"type": "conv1d", "out_channels": self.r.randint(1, 6)}
        if self.r.random() < 0.2:
            layer["in_channels"] = C
        self.conv_groups(layer, C, None)
        if self.r.random() < 0.2:
            layer["kernel_size"] = self.r.randint(1, 5)
            layer["padding"] = "same"
            d, _ = self.dilation(99, 1, layer["kernel_size"], 1)
            if d != 1:
                layer["dilation"] = d
            out = [layer["out_channels"], L]
        else:
            p = self.r.randint(0, 2)
            k = self.r.randint(1, min(5, L + 2 * p))
            s = self.r.randint(1, 3)
            layer["kernel_size"] = k
            if s != 1:
                layer["stride"] = s
            if p:
                layer["padding"] = p
            elif self.r.random() < 0.2:
                layer["padding"] = "valid"
            d, _ = self.dilation(L + 2 * p, 1, k, 1)
            if d != 1:
                layer["dilation"] = d
            out = [layer["out_channels"], conv_out(L, k, s, p, d)]
        if self.r.random() < 0.3:
            layer["bias"] = self.r.random() < 0.5
        self.act_field(layer)
        return layer, out

    def pool(self, shape):
        C, H, W = shape
        kh, kw = self.r.randint(1, min(3, H)), self.r.randint(1, min(3, W))
        if self.r.random() < 0.5:
            kh = kw = min(kh, kw)
        ph, pw = self.r.randint(0, kh // 2), self.r.randint(0, kw // 2)
        layer = {"type": self.pick("max_pool2d", "avg_pool2d"), "kernel_size": self.maybe_pair(kh, kw)}
        sh, sw = kh, kw
        if self.r.random() < 0.4:
            sh, sw = self.r.randint(1, 3), self.r.randint(1, 3)
            layer["stride"] = self.maybe_pair(sh, sw)
        if ph or pw:
            layer["padding"] = self.maybe_pair(ph, pw)
        out = [C, conv_out(H, kh, sh, ph), conv_out(W, kw, sw, pw)]
        return layer, out

    def upsample(self, shape):
        """nn.Upsample by size or by scale_factor (non-integer ones too), to
        at most 16x16."""
        C, H, W = shape
        layer = {"type": "upsample"}
        mode = self.pick("nearest", "bilinear")
        if mode == "bilinear" or self.r.random() < 0.3:
            layer["mode"] = mode
        if self.r.random() < 0.5:
            oh, ow = self.r.randint(1, min(16, 2 * H)), self.r.randint(1, min(16, 2 * W))
            layer["size"] = self.maybe_pair(oh, ow)
        else:
            factors = (0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0)
            fits = lambda n, f: 1 <= math.floor(n * f) <= 16
            sh = self.pick(*[f for f in factors if fits(H, f)])
            sw = sh if fits(W, sh) and self.r.random() < 0.6 else self.pick(*[f for f in factors if fits(W, f)])
            layer["scale_factor"] = sh if sh == sw and self.r.random() < 0.7 else [sh, sw]
            oh, ow = math.floor(H * sh), math.floor(W * sw)
        if mode == "bilinear" and self.r.random() < 0.6:
            layer["align_corners"] = self.r.random() < 0.6
        return layer, [C, oh, ow]

    def batch_norm(self, shape):
        layer = {"type": "batch_norm"}
        if self.r.random() < 0.3:
            layer["num_features"] = shape[0]
        if self.r.random() < 0.3:
            layer["eps"] = self.pick(1e-5, 1e-3, 0.1)
        if self.r.random() < 0.3:
            layer["momentum"] = self.pick(0.1, 0.5, 0.9)
        if self.r.random() < 0.2:
            layer["affine"] = False
        return layer, shape

    def layer_norm(self, shape):
        """Over the last k sizes of the example: an int for one, a list, or
        nothing for all of them."""
        k = self.r.randint(1, len(shape))
        layer = {"type": "layer_norm"}
        if k < len(shape) or self.r.random() < 0.5:
            last = list(shape[len(shape) - k:])
            layer["normalized_shape"] = last[0] if k == 1 and self.r.random() < 0.5 else last
        if self.r.random() < 0.3:
            layer["eps"] = self.pick(1e-5, 1e-3, 0.1)
        if self.r.random() < 0.2:
            layer["elementwise_affine"] = False
        elif self.r.random() < 0.2:
            layer["bias"] = False
        return layer, shape

    def group_norm(self, shape):
        C = shape[0]
        layer = {"type": "group_norm",
                 "num_groups": self.pick(*[g for g in range(1, C + 1) if C % g == 0])}
        if self.r.random() < 0.3:
            layer["num_channels"] = C
        if self.r.random() < 0.3:
            layer["eps"] = self.pick(1e-5, 1e-3, 0.1)
        if self.r.random() < 0.2:
            layer["affine"] = False
        return layer, shape

    def norm(self, shape):
        return self.pick(self.layer_norm, self.group_norm)(shape)

    def dropout(self, shape):
        t = "dropout2d" if len(shape) in (2, 3) and self.r.random() < 0.4 else "dropout"
        layer = {"type": t}
        if self.r.random() < 0.6:
            layer["p"] = self.pick(0.0, 0.1, 0.25, 0.5, 0.9)
        return layer, shape

    def linear(self, shape, out=None):
        layer = {"type": "linear", "out_features": out or self.r.randint(1, 12)}
        if self.r.random() < 0.2:
            layer["in_features"] = shape[0]
        if self.r.random() < 0.3:
            layer["bias"] = self.r.random() < 0.5
        self.act_field(layer)
        return layer, [layer["out_features"]]

    # ---- whole models

    def loss(self):
        return self.pick("cross_entropy", "cross_entropy", "mse", "hinge", None)

    def head(self, layers, shape, loss):
        """Linear layers to the loss's output size."""
        for _ in range(self.r.randint(0, 2)):
            self.push(layers, shape, self.linear(shape))
            shape = layers[-1][1]
            if self.r.random() < 0.4:
                self.push(layers, shape, self.pick(self.activation, self.batch_norm, self.layer_norm,
                                                           self.dropout)(shape))
                shape = layers[-1][1]
        out = {"cross_entropy": self.r.randint(2, 7), "hinge": 1}.get(loss)
        self.push(layers, shape, self.linear(shape, out))
        if loss is None and self.r.random() < 0.5:
            self.push(layers, layers[-1][1], self.activation(layers[-1][1]))
        return layers[-1][1]

    def push(self, layers, in_shape, made):
        layer, out = made
        layer["_in"] = [list(in_shape)]
        if self.r.random() < 0.5:
            layer["name"] = self.name(layer["type"].split("_")[0][:4])
        layers.append((layer, out))

    def sequential(self, kind):
        loss = self.loss()
        layers = []
        if kind == "image":
            shape = [self.r.randint(1, 3), self.r.randint(3, 14), self.r.randint(3, 14)]
            inp = list(shape)
            for _ in range(self.r.randint(1, 6)):
                maker = self.pick(self.conv2d, self.conv2d, self.conv2d, self.pool, self.batch_norm,
                                  self.norm, self.activation, self.dropout, self.upsample,
                                  self.conv_transpose2d)
                self.push(layers, shape, maker(shape))
                shape = layers[-1][1]
            if loss == "mse" and self.r.random() < 0.3:
                pass  # the image itself is the output
            else:
                if self.r.random() < 0.3:
                    self.push(layers, shape, ({"type": "global_avg_pool2d"}, [shape[0]]))
                else:
                    self.push(layers, shape, ({"type": "flatten"}, [shape[0] * shape[1] * shape[2]]))
                shape = self.head(layers, layers[-1][1], loss)
        elif kind == "conv1d":
            shape = [self.r.randint(1, 4), self.r.randint(3, 20)]
            inp = list(shape)
            for _ in range(self.r.randint(1, 4)):
                maker = self.pick(self.conv1d, self.conv1d, self.activation, self.dropout, self.batch_norm,
                                  self.norm)
                self.push(layers, shape, maker(shape))
                shape = layers[-1][1]
            self.push(layers, shape, ({"type": "flatten"}, [shape[0] * shape[1]]))
            shape = self.head(layers, layers[-1][1], loss)
        else:
            shape = [self.r.randint(1, 24)]
            inp = list(shape)
            for _ in range(self.r.randint(0, 4)):
                maker = self.pick(self.linear, self.linear, self.batch_norm, self.activation, self.dropout,
                                  self.layer_norm, self.norm)
                self.push(layers, shape, maker(shape))
                shape = layers[-1][1]
            shape = self.head(layers, shape, loss)
        # Unnamed layers are named by their position, as nn.Sequential does.
        names = set()
        for i, (layer, _) in enumerate(layers):
            layer.setdefault("name", str(i))
            if layer["name"] in names or (layer["name"].isdigit() and layer["name"] != str(i)):
                layer["name"] = str(i)
            names.add(layer["name"])
        model = {"name": "random-%s" % kind, "input": inp,
                 "layers": [layer for layer, _ in layers]}
        if loss:
            model["loss"] = {"type": loss}
        return model

    def graph(self):
        """Image models with residual adds and channel concats."""
        loss = self.loss()
        shape = [self.r.randint(1, 3), self.r.randint(4, 12), self.r.randint(4, 12)]
        nodes = []
        avail = [("input", shape)]

        def node(made, inputs):
            layer, out = made
            layer["name"] = self.name("n")
            layer["inputs"] = [n for n, _ in inputs]
            layer["_in"] = [list(s) for _, s in inputs]
            nodes.append(layer)
            avail.append((layer["name"], out))
            return avail[-1]

        for _ in range(self.r.randint(2, 6)):
            src = self.r.choice(avail)
            what = self.pick("conv", "add", "add", "concat", "act", "bn", "norm", "pool", "dropout",
                             "upsample")
            if what == "conv":
                node(self.conv2d(src[1]), [src])
            elif what == "add":
                # x + f(x), f a "same" convolution keeping the channels, or a
                # sum of two or three such branches.
                branches = [node(self.conv2d(src[1], same=True, out_channels=src[1][0]), [src])
                            for _ in range(self.r.randint(1, 2))]
                node(({"type": "add"}, src[1]), [src] + branches)
            elif what == "concat":
                branches = [node(self.conv2d(src[1], same=True), [src]) for _ in range(self.r.randint(1, 2))]
                ins = [src] + branches if self.r.random() < 0.7 else branches
                node(({"type": "concat"}, [sum(s[0] for _, s in ins)] + src[1][1:]), ins)
            elif what == "act":
                node(self.activation(src[1]), [src])
            elif what == "bn":
                node(self.batch_norm(src[1]), [src])
            elif what == "norm":
                node(self.norm(src[1]), [src])
            elif what == "pool":
                node(self.pool(src[1]), [src])
            elif what == "upsample":
                node(self.upsample(src[1]), [src])
            else:
                node(self.dropout(src[1]), [src])
        last = avail[-1]
        if self.r.random() < 0.5:
            last = node(({"type": "global_avg_pool2d"}, [last[1][0]]), [last])
        else:
            last = node(({"type": "flatten"}, [last[1][0] * last[1][1] * last[1][2]]), [last])
        seq = []
        self.head(seq, last[1], loss)
        for layer, out in seq:
            last = node((layer, out), [last])
        # Keep only what the output depends on.
        need, order = {last[0]}, []
        for layer in reversed(nodes):
            if layer["name"] in need:
                need.update(layer["inputs"])
                order.append(layer)
        model = {"name": "random-graph", "input": shape, "nodes": order[::-1], "output": last[0]}
        if loss:
            model["loss"] = {"type": loss}
        return model

    def init(self, layer):
        """An "init" for a layer with parameters (torch.nn.init's names
        and arguments): the weight's arguments beside it or in an object,
        the bias's as a name or an object."""
        r = self.r
        bn = layer["type"] == "batch_norm"
        kinds = ["normal", "uniform", "trunc_normal", "zeros", "ones", "constant", "default"]
        if not bn:
            kinds += ["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"] * 2
        w, args = self.pick(*kinds), {}
        if w.startswith("kaiming"):
            if r.random() < 0.5:
                args["mode"] = self.pick("fan_in", "fan_out")
            nl = self.pick(None, "relu", "leaky_relu", "tanh", "linear", "conv2d", "sigmoid", "selu")
            if nl:
                args["nonlinearity"] = nl
            if nl in (None, "leaky_relu") and r.random() < 0.5:
                args["a"] = round(r.uniform(0, 0.5), 3)
        elif w.startswith("xavier") and r.random() < 0.5:
            args["gain"] = round(r.uniform(0.5, 2), 3)
        elif w == "normal":
            args = {"mean": round(r.uniform(-0.1, 0.1), 3), "std": round(r.uniform(0.01, 0.3), 3)}
        elif w == "uniform":
            a = round(r.uniform(-0.3, 0), 3)
            args = {"a": a, "b": round(a + r.uniform(0.01, 0.5), 3)}
        elif w == "trunc_normal":
            args = {"std": 0.02} if r.random() < 0.5 else {"mean": 0.1, "std": 0.2, "a": -0.2, "b": 0.3}
        elif w == "constant":
            args = {"val": round(r.uniform(-0.2, 0.2), 3)}
        init = dict({"type": w}, **args) if r.random() < 0.3 else dict({"weight": w}, **args)
        if "type" in init:
            init = {"weight": init}
        if layer.get("bias", True) and layer.get("affine", True) and r.random() < 0.7:
            init["bias"] = self.pick("zeros", "ones", "default", {"type": "constant", "val": 0.1},
                                     {"type": "normal", "std": 0.01},
                                     {"type": "uniform", "a": -0.1, "b": 0.1})
        layer["init"] = init

    def model(self):
        kind = self.pick("image", "image", "image", "conv1d", "flat", "graph", "graph")
        model = self.graph() if kind == "graph" else self.sequential(kind)
        for layer in model.get("layers", model.get("nodes")):
            if (layer["type"] in ("conv2d", "conv1d", "linear", "batch_norm")
                    and layer.get("affine", True) and self.r.random() < 0.3):
                self.init(layer)
        return model


def model_file_json(model):
    def strip(layer):
        return {k: v for k, v in layer.items() if not k.startswith("_")}
    m = dict(model)
    for key in ("layers", "nodes"):
        if key in m:
            m[key] = [strip(layer) for layer in m[key]]
    return m


# ---- the PyTorch twin ----------------------------------------------------------------


def pad_arg(p):
    return p if isinstance(p, (int, str)) else tuple(p)


def act_fn(t, layer):
    if t == "relu":
        return F.relu
    if t == "leaky_relu":
        return lambda x: F.leaky_relu(x, layer.get("negative_slope", 0.01))
    if t == "elu":
        return lambda x: F.elu(x, layer.get("alpha", 1.0))
    if t == "relu6":
        return F.relu6
    if t == "sigmoid":
        return torch.sigmoid
    if t == "tanh":
        return torch.tanh
    if t == "softmax":
        return lambda x: F.softmax(x, layer.get("dim", 1))
    if t == "gelu":
        return lambda x: F.gelu(x, approximate=layer.get("approximate", "none"))
    if t == "silu":
        return F.silu
    if t == "hardswish":
        return F.hardswish
    if t == "softplus":
        return lambda x: F.softplus(x, layer.get("beta", 1.0), layer.get("threshold", 20.0))
    return None


def layer_norm_module(layer, shape):
    """nn.LayerNorm over normalized_shape (absent: the whole example); its
    bias=False is PyTorch 2.1's, made here by dropping the bias on older
    versions."""
    ns = layer.get("normalized_shape", shape)
    ns = [ns] if isinstance(ns, int) else list(ns)
    affine, bias = layer.get("elementwise_affine", True), layer.get("bias", True)
    eps = layer.get("eps", 1e-5)
    try:
        return nn.LayerNorm(ns, eps=eps, elementwise_affine=affine, bias=bias)
    except TypeError:
        mod = nn.LayerNorm(ns, eps=eps, elementwise_affine=affine)
        if affine and not bias:
            mod.register_parameter("bias", None)
        return mod
def init_slots(spec):
    """A layer's "init" as (name, arguments) for its weight and its bias."""
    def one(v, args):
        if isinstance(v, dict):
            return v["type"], {k: x for k, x in v.items() if k != "type"}
        return v, args
    beside = {k: x for k, x in spec.items() if k not in ("weight", "bias")}
    return one(spec.get("weight", "default"), beside), one(spec.get("bias", "default"), {})


def torch_init(mod, spec):
    """The same "init" through torch.nn.init, so its spelling is PyTorch's."""
    for t, (name, args) in zip((mod.weight, mod.bias), init_slots(spec)):
        if name != "default":
            getattr(nn.init, name + "_")(t, **args)


class Twin(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.graph = "nodes" in model
        self.layers = model["nodes"] if self.graph else model["layers"]
        self.output = model.get("output")
        self.plan = []
        for i, layer in enumerate(self.layers):
            t, name, ins = layer["type"], layer["name"], layer["_in"]
            mod = None
            if t in ("conv2d", "conv1d"):
                cls = nn.Conv2d if t == "conv2d" else nn.Conv1d
                k = layer["kernel_size"]
                mod = cls(ins[0][0], layer["out_channels"], k if isinstance(k, int) else tuple(k),
                          stride=pad_arg(layer.get("stride", 1)), padding=pad_arg(layer.get("padding", 0)),
                          dilation=pad_arg(layer.get("dilation", 1)), groups=layer.get("groups", 1),
                          bias=layer.get("bias", True))
            elif t == "conv_transpose2d":
                k = layer["kernel_size"]
                mod = nn.ConvTranspose2d(ins[0][0], layer["out_channels"], k if isinstance(k, int) else tuple(k),
                                         stride=pad_arg(layer.get("stride", 1)),
                                         padding=pad_arg(layer.get("padding", 0)),
                                         output_padding=pad_arg(layer.get("output_padding", 0)),
                                         groups=layer.get("groups", 1), bias=layer.get("bias", True),
                                         dilation=pad_arg(layer.get("dilation", 1)))
            elif t == "linear":
                mod = nn.Linear(ins[0][0], layer["out_features"], bias=layer.get("bias", True))
            elif t == "upsample":
                size, scale = layer.get("size"), layer.get("scale_factor")
                mode = layer.get("mode", "nearest")
                mod = nn.Upsample(size=tuple(size) if isinstance(size, list) else size,
                                  scale_factor=tuple(scale) if isinstance(scale, list) else scale,
                                  mode=mode,
                                  align_corners=layer.get("align_corners", False) if mode == "bilinear" else None)
            elif t == "batch_norm":
                cls = nn.BatchNorm1d if len(ins[0]) <= 2 else nn.BatchNorm2d
                mod = cls(ins[0][0], eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1),
                          affine=layer.get("affine", True))
            elif t == "layer_norm":
                mod = layer_norm_module(layer, ins[0])
            elif t == "group_norm":
                mod = nn.GroupNorm(layer["num_groups"], ins[0][0], eps=layer.get("eps", 1e-5),
                                   affine=layer.get("affine", True))
            if mod is not None and "init" in layer:
                torch_init(mod, layer["init"])
            if mod is not None:
                self.add_module(name, mod)
            self.plan.append((name, t, layer, mod))

    def run_layer(self, t, layer, mod, xs):
        x = xs[0]
        if mod is not None:
            y = mod(x)
        elif t in ("max_pool2d", "avg_pool2d"):
            k = layer["kernel_size"]
            k = k if isinstance(k, int) else tuple(k)
            s = layer.get("stride")
            s = k if s is None else (s if isinstance(s, int) else tuple(s))
            p = pad_arg(layer.get("padding", 0))
            y = (F.max_pool2d if t == "max_pool2d" else F.avg_pool2d)(x, k, s, p)
        elif t == "global_avg_pool2d":
            y = x.mean((2, 3))
        elif t == "flatten":
            y = torch.flatten(x, 1)
        elif t == "dropout":
            y = F.dropout(x, layer.get("p", 0.5), self.training)
        elif t == "dropout2d":
            y = x if not self.training else F.dropout2d(x, layer.get("p", 0.5), True)
        elif t == "add":
            y = xs[0]
            for z in xs[1:]:
                y = y + z
        elif t == "concat":
            y = torch.cat(xs, 1)
        else:
            y = act_fn(t, layer)(x)
        if "activation" in layer:
            y = act_fn(layer["activation"], {})(y)
        return y

    def forward(self, x):
        if not self.graph:
            for name, t, layer, mod in self.plan:
                x = self.run_layer(t, layer, mod, [x])
            return x
        vals = {"input": x}
        for name, t, layer, mod in self.plan:
            vals[name] = self.run_layer(t, layer, mod, [vals[n] for n in layer["inputs"]])
        return vals[self.output]


def torch_loss(kind, out, labels):
    if kind == "cross_entropy":
        return F.cross_entropy(out, labels.long())
    if kind == "mse":
        return F.mse_loss(out, labels)
    return torch.clamp(1 - labels.reshape(out.shape) * out, min=0).mean()


def torch_run(model, state, x, labels, dtype, train):
    """Output, loss and gradients (by nabla's names), in dtype."""
    torch.manual_seed(0)
    net = Twin(model).to(dtype)
    net.load_state_dict({k: v for k, v in state.items()}, strict=True)
    net.train(train)
    x = x.detach().to(dtype).clone().requires_grad_()
    out = net(x)
    res = {"output": out}
    kind = model.get("loss", {}).get("type")
    if kind and labels is not None:
        y = labels if kind == "cross_entropy" else labels.to(dtype)
        loss = torch_loss(kind, out, y)
        loss.backward()
        res["loss"] = loss
        res["grad.input"] = x.grad
        for name, p in net.named_parameters():
            res["grad." + name] = p.grad if p.grad is not None else torch.zeros_like(p)
    return {k: v.detach() for k, v in res.items()}


# ---- one case ----------------------------------------------------------------------


def make_data(model, r):
    torch.manual_seed(r.randrange(2**31))
    twin = Twin(model)
    for mod in twin.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if mod.affine:
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.5, 0.5)
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
        if isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
            if mod.weight is not None:
                mod.weight.data.uniform_(0.5, 1.5)
            if mod.bias is not None:
                mod.bias.data.uniform_(-0.5, 0.5)
    state = {k: v.clone() for k, v in twin.state_dict().items()}
    wdtype = r.choice([torch.float32, torch.float32, torch.float64])
    weights = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            if r.random() < 0.5:  # PyTorch's files have it; nabla ignores it
                weights[k] = v
            continue
        weights[k] = v.to(wdtype)
    n = r.randint(2, 4)
    x = torch.rand((n,) + tuple(model["input"]), dtype=torch.float64) * 2 - 1
    x = x.to(r.choice([torch.float32, torch.float64]))
    kind = model.get("loss", {}).get("type")
    with torch.no_grad():
        out_shape = tuple(twin.eval().double()(x.double()).shape)
    labels = None
    if kind == "cross_entropy":
        labels = torch.randint(0, out_shape[1], (n,)).to(r.choice([torch.int64, torch.int32]))
    elif kind == "mse":
        labels = torch.rand(out_shape, dtype=torch.float64).to(torch.float32)
    elif kind == "hinge":
        labels = (torch.randint(0, 2, (n,)) * 2 - 1).to(torch.float32)
        if r.random() < 0.5:
            labels = labels.reshape(out_shape)
    return weights, x, labels


def compare(ours, refs):
    """(worst error, where) of ours against the names of refs[0]: an
    element's error is |a - b| / max(1, |b|) for the closest b of the
    references.  A missing, unexpected or misshapen tensor is an infinite
    error."""
    ref = refs[0]
    worst, what = 0.0, ""
    extra = set(ours) - set(ref)
    if extra:
        return float("inf"), "unexpected tensors %s" % sorted(extra)
    for name in ref:
        if name not in ours:
            return float("inf"), "missing %s" % name
        if tuple(ours[name].shape) != tuple(ref[name].shape):
            return float("inf"), "%s has shape %s, torch %s" % (name, list(ours[name].shape), list(ref[name].shape))
        a = ours[name].double().reshape(-1)
        if a.numel() == 0:
            continue
        errs = []
        for r in refs:
            b = r[name].double().reshape(-1)
            e = (a - b).abs() / b.abs().clamp(min=1)
            errs.append(torch.where(torch.isnan(e), torch.full_like(e, float("inf")), e))
        err = torch.stack(errs).min(0).values
        i = int(err.argmax())
        if float(err[i]) > worst:
            worst = float(err[i])
            what = "%s[%d]: nabla %.10g, torch %s" % (
                name, i, float(a[i]), ", ".join("%.10g" % float(r[name].reshape(-1)[i]) for r in refs))
    return worst, what


def run_nabla(args, cmd):
    try:
        p = subprocess.run([args.nabla] + cmd, capture_output=True, text=True)
    except OSError as e:
        return -1, str(e)
    return p.returncode, p.stderr.strip()


def check_case(args, k, model, r, work):
    weights, x, labels = make_data(model, r)
    mpath, wpath = os.path.join(work, "model.json"), os.path.join(work, "weights.safetensors")
    xpath, ypath = os.path.join(work, "input.safetensors"), os.path.join(work, "labels.safetensors")
    with open(mpath, "w") as f:
        json.dump(model_file_json(model), f, indent=1)
    st_save(wpath, weights)
    st_save(xpath, {"input": x})
    base = ["forward", mpath, "--weights", wpath, "--input", xpath]
    if labels is not None:
        st_save(ypath, {"labels": labels})
        base += ["--labels", ypath, "--grad"]
    state = st_load(wpath)  # exactly what nabla reads
    for k2 in Twin(model).state_dict():
        if k2.endswith("num_batches_tracked") and k2 not in state:
            state[k2] = torch.tensor(0)
    xin = st_load(xpath)["input"]
    yin = st_load(ypath)["labels"] if labels is not None else None

    types = [layer["type"] for layer in model.get("layers", model.get("nodes"))]
    has_dropout = any(t.startswith("dropout") for t in types)
    has_bn = any(t in ("batch_norm", "layer_norm", "group_norm") for t in types)
    runs = [("eval", False)]
    if has_bn or has_dropout:
        runs.append(("train", True))
    errs, problems, cmds = {}, [], []
    for mode, train in runs:
        ref64 = torch_run(model, state, xin, yin, torch.float64, train)
        ref32 = torch_run(model, state, xin, yin, torch.float32, train)
        st_save(os.path.join(work, "torch-%s-f64.safetensors" % mode), ref64)
        st_save(os.path.join(work, "torch-%s-f32.safetensors" % mode), ref32)
        # f32 is held to PyTorch's float32 or float64, whichever is closer:
        # where a value is all cancellation (the gradient of a bias before
        # batch norm is 0 plus rounding), float32's noise is no reference.
        for dt, refs, tol in (("f32", [ref32, ref64], 1e-4), ("f64", [ref64], 1e-9)):
            out = os.path.join(work, "nabla-%s-%s.safetensors" % (mode, dt))
            cmd = base + ["--dtype", dt, "--out", out] + (["--train"] if train else [])
            cmds.append(" ".join([args.nabla] + cmd))
            rc, err = run_nabla(args, cmd)
            if rc != 0:
                problems.append("%s %s: nabla exited %d: %s" % (mode, dt, rc, err))
                continue
            ours = st_load(out)
            ref = refs[0]
            if train and has_dropout:
                # Different generators: compare the shapes only.
                bad = [n for n in ref if n not in ours or tuple(ours[n].shape) != tuple(ref[n].shape)]
                bad += [n for n in ours if n not in ref or not torch.isfinite(ours[n]).all()]
                if bad:
                    problems.append("%s %s: tensors missing or misshapen: %s" % (mode, dt, bad))
                continue
            e, what = compare(ours, refs)
            errs["%s %s" % (mode, dt)] = e
            if not e <= tol:
                problems.append("%s %s: error %.3g > %g at %s" % (mode, dt, e, tol, what))
    desc = "%-14s %-13s %s" % (model["name"], model.get("loss", {}).get("type", "none"), ",".join(types))
    if len(desc) > 100:
        desc = desc[:97] + "..."
    if problems:
        print("%4d FAILED %s" % (k, desc))
        for p in problems:
            print("       " + p)
        with open(os.path.join(work, "commands.sh"), "w") as f:
            f.write("\n".join(cmds) + "\n")
        return False
    f32 = max(v for key, v in errs.items() if key.endswith("f32"))
    f64 = max(v for key, v in errs.items() if key.endswith("f64"))
    print("%4d ok     %s  (f32 %.1e, f64 %.1e)" % (k, desc, f32, f64))
    return True


def features(model):
    """What a model exercises, for the counts: its layer types, the
    activations its layers name, and the settings that pick other kernels
    (groups, depthwise, dilation, transposed-convolution output padding,
    upsampling modes, the tanh form of gelu)."""
    out = set()
    for layer in model.get("layers", model.get("nodes")):
        t = layer["type"]
        out.add(t)
        if layer.get("activation"):
            out.add("activation: " + layer["activation"])
        channels = layer["_in"][0][0] if layer.get("_in") else None
        g = layer.get("groups", 1)
        if g > 1:
            out.add(t + " groups")
            if g == channels:
                out.add(t + " depthwise")
        if layer.get("dilation", 1) not in (1, [1, 1]):
            out.add(t + " dilation")
        if layer.get("output_padding", 0) not in (0, [0, 0]):
            out.add(t + " output_padding")
        if t == "upsample":
            mode = layer.get("mode", "nearest")
            if mode == "bilinear":
                mode += " align_corners" if layer.get("align_corners") else ""
            out.add("upsample " + mode + (" size" if "size" in layer else " scale_factor"))
        if t == "layer_norm":
            ns = layer.get("normalized_shape", layer["_in"][0])
            k = 1 if isinstance(ns, int) else len(ns)
            out.add("layer_norm over %d dim%s" % (k, "" if k == 1 else "s"))
        if t == "group_norm":
            g = layer["num_groups"]
            out.add("group_norm " + ("1 group" if g == 1 else "C groups" if g == channels
                                     else "some groups"))
        if "init" in layer:
            (w, _), (b, _) = init_slots(layer["init"])
            out.add("init " + w)
            out.add("init bias " + b)
        if t == "gelu" and layer.get("approximate") == "tanh":
            out.add("gelu tanh")
    return out


def print_counts(counts):
    """Models that exercised each feature, and how many of them failed."""
    w = max([len("feature")] + [len(name) for name in counts])
    print("%-*s %6s %6s" % (w, "feature", "models", "failed"))
    for name in sorted(counts):
        n, bad = counts[name]
        print("%-*s %6d %6d" % (w, name, n, bad))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200, help="random models to check (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the models, weights and data (default 0)")
    ap.add_argument("--keep", metavar="DIR", help="keep failing cases in DIR/case-<k>/")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--nabla", default=os.path.join(here, "..", "build", "tools", "nabla"),
                    help="the nabla tool (default: build/tools/nabla)")
    args = ap.parse_args()
    if not os.access(args.nabla, os.X_OK):
        sys.exit("crosscheck: %s is not an executable: build it or pass --nabla" % args.nabla)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # PyTorch's notes on "same" padding and dropout2d
    passed = failed = 0
    counts = {}  # feature -> (models, failed)
    root = tempfile.mkdtemp(prefix="crosscheck-")
    try:
        for k in range(args.count):
            r = random.Random("%d/%d" % (args.seed, k))
            model = Gen(r).model()
            work = os.path.join(root, "case-%d" % k)
            os.makedirs(work)
            ok = check_case(args, k, model, r, work)
            for f in features(model):
                n, bad = counts.get(f, (0, 0))
                counts[f] = (n + 1, bad + (not ok))
            if ok:
                passed += 1
            else:
                failed += 1
                if args.keep:
                    dest = os.path.join(args.keep, "case-%d" % k)
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(work, dest)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_counts(counts)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
