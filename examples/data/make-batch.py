#!/usr/bin/env python3
"""Writes x.safetensors and y.safetensors, the batch of the README's
`nabla forward` line: the first 8 test images of Fashion-MNIST as "input"
[8, 1, 28, 28] F32 in [0, 1], and their classes as "labels" [8] I64.
Standard library only, from Debian's dataset-fashion-mnist:

    python3 examples/data/make-batch.py examples/data
"""
import gzip
import json
import struct
import sys

DATA = "/usr/share/datasets/fashion-mnist/t10k-%s-idx%d-ubyte.gz"
N = 8


def save(path, name, dtype, shape, data):
    """A safetensors file of one tensor: u64 header length, JSON header, data."""
    h = json.dumps({name: {"dtype": dtype, "shape": shape,
                           "data_offsets": [0, len(data)]}},
                   separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


out = sys.argv[1] if len(sys.argv) > 1 else "."
pixels = gzip.open(DATA % ("images", 3)).read()[16:16 + N * 784]
labels = gzip.open(DATA % ("labels", 1)).read()[8:8 + N]
save(out + "/x.safetensors", "input", "F32", [N, 1, 28, 28],
     struct.pack("<%df" % len(pixels), *(p / 255 for p in pixels)))
save(out + "/y.safetensors", "labels", "I64", [N],
     struct.pack("<%dq" % N, *labels))
