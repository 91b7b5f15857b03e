#!/usr/bin/env python3
"""Writes the IDX test fixtures of nabla into this folder.

Run by hand (python3 make_fixtures.py) when they need to change; the tests
only read the files it wrote, which are committed.  Every file is small and
its content follows from the formulas below.
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def images(n, rows, cols, pixel, magic=0x00000803):
    head = struct.pack(">IIII", magic, n, rows, cols)
    return head + bytes(pixel(i, r, c) for i in range(n)
                        for r in range(rows) for c in range(cols))


def labels(values, magic=0x00000801):
    return struct.pack(">II", magic, len(values)) + bytes(values)


def write(path, data):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# The data set: 20 training images and 10 test images of 28x28.
train_pixel = lambda i, r, c: (7 * i + 3 * r + 5 * c) % 256
train_labels = [(3 * i) % 10 for i in range(20)]
test_pixel = lambda i, r, c: (11 * i + r * c) % 256
test_labels = [9 - i for i in range(10)]

train_img = images(20, 28, 28, train_pixel)
train_lab = labels(train_labels)
test_img = images(10, 28, 28, test_pixel)
test_lab = labels(test_labels)

# raw/: the four standard names, uncompressed.
write("raw/train-images-idx3-ubyte", train_img)
write("raw/train-labels-idx1-ubyte", train_lab)
write("raw/t10k-images-idx3-ubyte", test_img)
write("raw/t10k-labels-idx1-ubyte", test_lab)

# gz/: the same, gzipped under the .gz names.
write("gz/train-images-idx3-ubyte.gz", gz(train_img))
write("gz/train-labels-idx1-ubyte.gz", gz(train_lab))
write("gz/t10k-images-idx3-ubyte.gz", gz(test_img))
write("gz/t10k-labels-idx1-ubyte.gz", gz(test_lab))

# mixed/: the raw training images beside a different gzipped copy (5
# images, all 255) that must be ignored; the labels only gzipped.
write("mixed/train-images-idx3-ubyte", train_img)
write("mixed/train-images-idx3-ubyte.gz", gz(images(5, 28, 28, lambda i, r, c: 255)))
write("mixed/train-labels-idx1-ubyte.gz", gz(train_lab))

# bad/: malformed files around a small good pair of 3 images of 4x5,
# pixel = 10 i + r + c, labels 2, 0, 1.
small_pixel = lambda i, r, c: 10 * i + r + c
good_img = images(3, 4, 5, small_pixel)
good_lab = labels([2, 0, 1])
write("bad/good-images", good_img)
write("bad/good-labels", good_lab)
write("bad/good-images.gz", gz(good_img))
write("bad/wrong-magic", b"\xde\xad\xbe\xef" + good_img[4:])
write("bad/float-images", images(3, 4, 5, small_pixel, magic=0x00000D03)[:16] + bytes(240))
write("bad/short-magic", b"\x00\x00\x08")
write("bad/truncated-header", good_img[:10])
write("bad/truncated-images", good_img[:-1])
write("bad/truncated-labels", good_lab[:-1])
write("bad/two-labels", labels([2, 0]))
write("bad/zero-rows", struct.pack(">IIII", 0x803, 3, 0, 5))
write("bad/zero-count", struct.pack(">IIII", 0x803, 0, 4, 5))
write("bad/huge-count", struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + bytes(784))
write("bad/huge-image", struct.pack(">IIII", 0x803, 1, 65536, 65536) + bytes(64))
# Found by fuzz/fuzz_idx.c: rows x cols overflowed a signed 64-bit product.
write("bad/huge-rows-cols", struct.pack(">IIII", 0x803, 3, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(8))
write("bad/trailing-images", good_img + b"abc")
write("bad/trailing-labels", good_lab + b"\x00")

# Corrupt gzip streams: a wrong CRC (the data decodes, the check fails),
# and a deflate block of the reserved type 3 (after the 10-byte header).
corrupt = bytearray(gz(good_img))
corrupt[-8] ^= 0x55
write("bad/corrupt-crc.gz", bytes(corrupt))
corrupt = bytearray(gz(good_img))
corrupt[10] |= 0x06
write("bad/corrupt-deflate.gz", bytes(corrupt))
for name in ("bad/corrupt-crc.gz", "bad/corrupt-deflate.gz"):
    try:
        gzip.decompress(open(os.path.join(HERE, name), "rb").read())
        raise SystemExit(name + " decompresses")
    except Exception:  # zlib.error or gzip.BadGzipFile
        pass
write("bad/truncated-images.gz", gz(good_img)[:30])

# gzip allows several members one after the other: they read as one file.
write("bad/two-members.gz", gz(good_img[:30]) + gz(good_img[30:]))
# A gzip stream followed by bytes that are not another member.
write("bad/gz-then-garbage.gz", gz(good_img) + b"garbage")

# images-only/: training images without their labels.
write("images-only/train-images-idx3-ubyte.gz", gz(train_img))
