#!/usr/bin/env python3
"""Writes the colour fixtures of tests/test_cli.sh and tests/test_images.sh.

Run by hand (python3 make-colour-fixtures.py) when they need to change; the
tests only read the files it wrote, which are committed.  Python 3's
standard library only (zlib and struct): PNGs and the safetensors file are
encoded here by hand.
"""
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(path, pixels):
    """pixels: rows of ints (gray 8-bit) or of (r, g, b) tuples (RGB 8-bit)."""
    h, w = len(pixels), len(pixels[0])
    rgb = isinstance(pixels[0][0], tuple)
    raw = b"".join(b"\x00" + bytes(s for p in row for s in (p if rgb else (p,)))
                   for row in pixels)
    data = (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if rgb else 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def constant(colour, side=4):
    return [[colour] * side for _ in range(side)]


def safetensors(path, tensors):
    """tensors: (name, shape, F32 values) in order."""
    header, blob = {}, b""
    for name, shape, values in tensors:
        data = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


YELLOW = (255, 255, 0)
BLUE = (0, 51, 204)

# colour/: two classes of constant 4x4 RGB images, blue and yellow (two of
# each in train/, one in test/).  Training images' channel means 0.5, 0.6,
# 0.4 and stds 0.5, 0.4, 0.4; inverted, yellow (1, 1, 0) is (0, 0, 1), near
# blue.
top = os.path.join(HERE, "colour")
shutil.rmtree(top, ignore_errors=True)
for split, n in (("train", 2), ("test", 1)):
    for name, colour in (("blue", BLUE), ("yellow", YELLOW)):
        for i in range(1, n + 1):
            png(os.path.join(top, split, name, "%d.png" % i), constant(colour))

# stats-gray/: two 2x2 gray images, pixels 0, 51, 102, 153 and 204, 255,
# 255, 255: mean 0.625, std sqrt(0.134375) = 0.366572.
top = os.path.join(HERE, "stats-gray")
shutil.rmtree(top, ignore_errors=True)
png(os.path.join(top, "train", "a", "1.png"), [[0, 51], [102, 153]])
png(os.path.join(top, "train", "b", "1.png"), [[204, 255], [255, 255]])

# rgb1x1.json's weights: one 1x1 kernel reading R, G and B with 1, 0 and
# 0.5 (drawn as the colour (1, 0, 0.5)), the rest 0.
safetensors(os.path.join(HERE, "rgb1x1.safetensors"), [
    ("c.weight", [1, 3, 1, 1], [1.0, 0.0, 0.5]),
    ("c.bias", [1], [0.0]),
    ("fc.weight", [2, 4], [0.0] * 8),
    ("fc.bias", [2], [0.0, 0.0]),
])
