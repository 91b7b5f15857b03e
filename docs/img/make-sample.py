#!/usr/bin/env python3
"""Writes sample.png, the 128x128 gray test image of `nabla filter`: a
filled rectangle, a circle, a cross, a diagonal line and a gradient bar on a
dark background, with light noise from a fixed seed.  Standard library only:

    python3 docs/img/make-sample.py docs/img/sample.png
"""
import random
import struct
import sys
import zlib

W = H = 128


def image():
    rng = random.Random(20240601)
    px = [[0.08] * W for _ in range(H)]

    def put(x, y, v):
        if 0 <= x < W and 0 <= y < H:
            px[y][x] = v

    for y in range(12, 52):          # filled rectangle
        for x in range(10, 58):
            put(x, y, 0.85)
    for y in range(H):               # filled circle, centre (94, 34), r 22
        for x in range(W):
            if (x - 94) ** 2 + (y - 34) ** 2 <= 22 ** 2:
                put(x, y, 0.65)
    for d in range(-18, 19):         # cross centred on (34, 90)
        for t in range(-2, 3):
            put(34 + d, 90 + t, 1.0)
            put(34 + t, 90 + d, 1.0)
    for i in range(64, 124):         # diagonal line, 2 pixels wide
        put(i, i - 4, 0.95)
        put(i + 1, i - 4, 0.95)
    for y in range(112, 124):        # horizontal gradient bar
        for x in range(6, 58):
            put(x, y, (x - 6) / 51)
    for y in range(H):               # light noise
        for x in range(W):
            v = px[y][x] + rng.gauss(0, 0.02)
            px[y][x] = min(1.0, max(0.0, v))
    return px


def png(px):
    """An 8-bit gray PNG of rows of values in [0, 1]."""
    raw = b"".join(b"\0" + bytes(round(v * 255) for v in row) for row in px)

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", len(px[0]), len(px), 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "sample.png"
    with open(out, "wb") as f:
        f.write(png(image()))
