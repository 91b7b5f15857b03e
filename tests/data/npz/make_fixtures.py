#!/usr/bin/env python3
"""Writes the .npz test fixtures of nabla into this folder.

Run by hand (python3 make_fixtures.py) when they need to change; the tests
only read the files it wrote, which are committed.  Standard library only:
the archives are laid out as numpy.savez (stored) and numpy.savez_compressed
(deflated) write them, each entry opened with force_zip64=True and its .npy
header padded with spaces and a newline to a multiple of 64 bytes, but with
a fixed timestamp so that they are reproducible.
"""
import os
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# dtype: (descr, struct format of one item)
TYPES = {
    "uint8": ("|u1", "B"), "int32": ("<i4", "i"), "int64": ("<i8", "q"),
    "float32": ("<f4", "f"), "float64": ("<f8", "d"),
}


def npy(dtype, shape, values):
    descr, fmt = TYPES[dtype]
    shape_repr = "(%d,)" % shape[0] if len(shape) == 1 else repr(tuple(shape))
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_repr)
    # As numpy: room for the first size to grow, then padding to 64 bytes.
    header += " " * (21 - len(repr(shape[0])))
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * (pad % 64) + "\n"
    count = 1
    for s in shape:
        count *= s
    assert len(values) == count
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
            + struct.pack("<%d%s" % (count, fmt), *values))


def savez(name, arrays, compressed):
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(os.path.join(HERE, name), "w", compression=method,
                         allowZip64=True) as z:
        for key, (dtype, shape, values) in arrays:
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with z.open(info, "w", force_zip64=True) as f:
                f.write(npy(dtype, shape, values))


def grid(n, dims, value):
    """value(i, index...) over n arrays of dims, in C order."""
    out = []

    def walk(i, prefix, rest):
        if not rest:
            out.append(value(i, *prefix))
            return
        for k in range(rest[0]):
            walk(i, prefix + [k], rest[1:])

    for i in range(n):
        walk(i, [], list(dims))
    return out


# tiny.npz (np.savez): 3 uint8 training images of 4x5, pixel 10 i + r + c,
# labels 2, 0, 1; one validation image, pixel 100 + r c, label 1; 2 test
# images, pixel 50 i + 5 r + c, labels 1, 2 (int64 throughout).
savez("tiny.npz", [
    ("X_train", ("uint8", (3, 4, 5), grid(3, (4, 5), lambda i, r, c: 10 * i + r + c))),
    ("y_train", ("int64", (3,), [2, 0, 1])),
    ("X_valid", ("uint8", (1, 4, 5), grid(1, (4, 5), lambda i, r, c: 100 + r * c))),
    ("y_valid", ("int64", (1,), [1])),
    ("X_test", ("uint8", (2, 4, 5), grid(2, (4, 5), lambda i, r, c: 50 * i + 5 * r + c))),
    ("y_test", ("int64", (2,), [1, 2])),
], compressed=False)

# tiny-compressed.npz (np.savez_compressed): 3 float32 training images flat
# as (3, 16), 4x4, value (16 i + k) / 64 for value k, labels 0, 1, 0 (uint8
# would do, int32 here); 2 float64 test images (2, 1, 4, 4), value
# (i + 1) k / 32, labels 3, 1 as (2, 1).
savez("tiny-compressed.npz", [
    ("X_train", ("float32", (3, 16), grid(3, (16,), lambda i, k: (16 * i + k) / 64))),
    ("y_train", ("int32", (3,), [0, 1, 0])),
    ("X_test", ("float64", (2, 1, 4, 4), grid(2, (1, 4, 4), lambda i, c, r, w:
                                                (i + 1) * (4 * r + w) / 32))),
    ("y_test", ("int64", (2, 1), [3, 1])),
], compressed=True)

# colour.npz (np.savez): 2 uint8 training images channels last (2, 5, 5, 3),
# value 60 ch + 10 r + c + i, labels 1, 0; 2 float32 test images channels
# first (2, 3, 2, 2), value (ch + 2 r + w + i) / 8, labels 0, 1.
savez("colour.npz", [
    ("X_train", ("uint8", (2, 5, 5, 3), grid(2, (5, 5, 3), lambda i, r, c, ch:
                                              60 * ch + 10 * r + c + i))),
    ("y_train", ("int32", (2,), [1, 0])),
    ("X_test", ("float32", (2, 3, 2, 2), grid(2, (3, 2, 2), lambda i, ch, r, w:
                                               (ch + 2 * r + w + i) / 8))),
    ("y_test", ("int64", (2,), [0, 1])),
], compressed=False)
