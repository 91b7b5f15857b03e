#!/usr/bin/env python3
"""Writes drawing.png, the README's `nabla predict` example: a pair of
trousers drawn dark on white, 64x64 gray, as one would draw it with a
mouse; nabla inverts it to the data set's light on dark.  Standard library
only:

    python3 docs/img/make-drawing.py docs/img/drawing.png
"""
import importlib.util
import os
import sys

# make-sample.py's PNG writer (no __pycache__ in the source tree).
sys.dont_write_bytecode = True
_spec = importlib.util.spec_from_file_location(
    "make_sample", os.path.join(os.path.dirname(os.path.abspath(__file__)), "make-sample.py"))
_sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sample)

W = H = 64


def image():
    px = [[1.0] * W for _ in range(H)]
    for y in range(H):
        for x in range(W):
            waist = 6 <= y < 14 and 18 <= x < 46
            # Two legs, a gap between them widening towards the hems.
            gap = (y - 14) * 5 // 48
            legs = 14 <= y < 60 and 17 - gap // 2 <= x < 47 + gap // 2 and abs(x - 31.5) > 1 + gap
            if waist or legs:
                px[y][x] = 0.15
    return px


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else "drawing.png", "wb") as f:
        f.write(_sample.png(image()))
