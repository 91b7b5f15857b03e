#!/usr/bin/env python3
"""Writes the PNG test fixtures of nabla into this folder.

Run by hand (python3 make_fixtures.py) when they need to change; the tests
only read the files it wrote, which are committed.  PNGs are encoded here
by hand (zlib and struct only) so every colour type, bit depth, palette,
transparency and interlacing case is exactly what its name says.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIG = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
         (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def ihdr(w, h, depth, color, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))


def pack_row(samples, depth):
    """One scanline (filter type 0) from its samples."""
    if depth == 16:
        return b"\x00" + b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return b"\x00" + bytes(samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return b"\x00" + bytes(out)


def png(pixels, depth, color, palette=None, trns=None, interlace=False):
    """pixels: rows of pixels, each a tuple of samples (or an int)."""
    h, w = len(pixels), len(pixels[0])
    px = [[p if isinstance(p, tuple) else (p,) for p in row] for row in pixels]
    assert all(len(p) == CHANNELS[color] for row in px for p in row)
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            cols = range(x0, w, dx)
            if not cols:
                continue
            for y in range(y0, h, dy):
                raw += pack_row([s for x in cols for s in px[y][x]], depth)
    else:
        for row in px:
            raw += pack_row([s for p in row for s in p], depth)
    data = SIG + ihdr(w, h, depth, color, 1 if interlace else 0)
    if palette:
        data += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return data


def write(path, data):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- one file per colour type and bit depth, with known values ----------
write("gray1.png", png([[1, 0, 1], [0, 1, 1]], 1, 0))
write("gray2.png", png([[0, 1, 2], [3, 2, 1]], 2, 0))
write("gray4.png", png([[0, 5, 10], [15, 3, 12]], 4, 0))
write("gray8.png", png([[0, 51], [204, 255]], 8, 0))
write("gray16.png", png([[0, 1], [32768, 65535]], 16, 0))
write("ga8.png", png([[(10, 255), (20, 128)], [(30, 0), (40, 64)]], 8, 4))
write("ga16.png", png([[(1000, 65535), (65535, 0)]], 16, 4))
write("rgb8.png", png([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (30, 60, 90)]], 8, 2))
write("rgb16.png", png([[(65535, 0, 1), (256, 512, 1024)]], 16, 2))
write("rgba8.png", png([[(255, 255, 255, 0), (3, 6, 9, 255)]], 8, 6))
write("rgba16.png", png([[(1, 2, 3, 65535)]], 16, 6))
PAL = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
write("pal8.png", png([[0, 1], [2, 3]], 8, 3, palette=PAL))
write("pal4.png", png([[3, 0, 2]], 4, 3, palette=PAL))
write("pal1.png", png([[1, 0, 1]], 1, 3, palette=[(0, 0, 0), (255, 255, 255)]))
# tRNS: palette entries 0..2 get alpha 255, 0, 128; entry 3 is opaque.
write("pal8-trns.png", png([[0, 1], [2, 3]], 8, 3, palette=PAL, trns=bytes([255, 0, 128])))
# tRNS: gray 7 and RGB (1, 2, 3) are transparent.
write("gray8-trns.png", png([[7, 9]], 8, 0, trns=struct.pack(">H", 7)))
write("rgb8-trns.png", png([[(1, 2, 3), (4, 5, 6)]], 8, 2, trns=struct.pack(">HHH", 1, 2, 3)))
# Adam7: pixel (r, c) = 10 r + c, and an RGB one with (r, c, r + c).
write("gray8-interlaced.png", png([[10 * r + c for c in range(5)] for r in range(5)], 8, 0, interlace=True))
write("rgb8-interlaced.png", png([[(r, c, r + c) for c in range(4)] for r in range(3)], 8, 2, interlace=True))

# ---- malformed files ----------------------------------------------------
good = png([[0, 51], [204, 255]], 8, 0)
write("bad/not-a-png.png", b"GIF89a, not a PNG at all")
write("bad/empty.png", b"")
bad_crc = bytearray(good)
bad_crc[29] ^= 0xFF  # the IHDR's CRC
write("bad/bad-crc.png", bytes(bad_crc))
write("bad/zero-width.png", SIG + ihdr(0, 2, 8, 0) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00")) + chunk(b"IEND", b""))
# Headers that claim more pixels than the file holds: 100000 x 100000
# (over nabla's 2^28 limit) and 16384 x 16384 (at the limit, but a few
# bytes of IDAT cannot hold 256 MiB).
write("bad/huge.png", SIG + ihdr(100000, 100000, 8, 0) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
write("bad/huge-idat.png", SIG + ihdr(16384, 16384, 8, 0) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
write("bad/bad-depth.png", SIG + ihdr(2, 2, 3, 0) + chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + chunk(b"IEND", b""))
write("bad/garbage-idat.png", SIG + ihdr(2, 2, 8, 0) + chunk(b"IDAT", b"this is not zlib") + chunk(b"IEND", b""))
write("bad/short-idat.png", SIG + ihdr(2, 2, 8, 0) + chunk(b"IDAT", zlib.compress(b"\x00\x01\x02")) + chunk(b"IEND", b""))
write("bad/no-iend.png", good[:-12])
# Found by fuzz/fuzz_png.c: an ancillary chunk claiming 2 GiB that libpng
# allocated before finding the file short.  Such chunks are now skipped.
ihdr_end = 8 + 25
write("bad/huge-scal.png", good[:ihdr_end] + struct.pack(">I", 0x7C0000F9) + b"sCAL" + b"D\xaeB`\x82")
write("bad/huge-text.png", good[:ihdr_end] + struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + good[ihdr_end:])
# Ancillary chunks a reader may ignore, before and after the image data.
write("gray8-ancillary.png", good[:ihdr_end] + chunk(b"gAMA", struct.pack(">I", 45455)) +
      chunk(b"tEXt", b"Comment\x00made by nabla") + good[ihdr_end:-12] +
      chunk(b"zTXt", b"Title\x00\x00" + zlib.compress(b"a title")) + good[-12:])

# ---- a data set of 28x28 images in class folders ------------------------
# Classes bar, dot, ring (sorted by name: labels 0, 1, 2), drawn in several
# kinds of gray PNG; the background is 0 and the figure's gray level is named.
def figure(kind, level):
    def inside(r, c):
        if kind == "bar":
            return 10 <= c <= 17
        d2 = (r - 13.5) ** 2 + (c - 13.5) ** 2
        return d2 <= 36 if kind == "dot" else 64 <= d2 <= 121
    return [[level if inside(r, c) else 0 for c in range(28)] for r in range(28)]


def gray8(kind, level):
    return png(figure(kind, level), 8, 0)


def gray_alpha8(kind, level):  # the alpha is dropped
    return png([[(v, 255 if v else 0) for v in row] for row in figure(kind, level)], 8, 4)


def gray16(kind, level16):
    return png(figure(kind, level16), 16, 0)


def coloured(kind, rgb, depth=8, alpha=None, interlace=False):
    fig = figure(kind, 1)
    off = (0, 0, 0) + ((0,) if alpha is not None else ())
    on = tuple(rgb) + ((alpha,) if alpha is not None else ())
    return png([[on if v else off for v in row] for row in fig], depth,
               6 if alpha is not None else 2, interlace=interlace)


def pal(kind, color):
    return png(figure(kind, 1), 8, 3, palette=[(0, 0, 0), color])


write("shapes/train/bar/a.png", gray8("bar", 200))           # 200
write("shapes/train/bar/b.png", gray_alpha8("bar", 85))      # 85
write("shapes/train/dot/a.png", png(figure("dot", 60), 8, 0, trns=b"\x00\x07"))  # 60
write("shapes/train/dot/b.png", gray16("dot", 32896))         # 128
write("shapes/train/dot/c.png", gray16("dot", 65535))         # 255
write("shapes/train/ring/a.png", png(figure("ring", 100), 8, 0, interlace=True))  # 100
write("shapes/train/ring/notes.txt", b"not a PNG: ignored\n")
write("shapes/test/bar/x.png", gray8("bar", 10))
write("shapes/test/dot/x.png", gray8("dot", 20))
write("shapes/test/ring/x.png", gray_alpha8("ring", 30))     # 30

# The same figures in colour PNGs (RGB, RGBA, palette; 8 and 16 bits): the
# figure's colour is named.
write("shapes-rgb/train/bar/a.png", coloured("bar", (255, 0, 0)))
write("shapes-rgb/train/bar/b.png", coloured("bar", (0, 255, 0), alpha=128))
write("shapes-rgb/train/dot/a.png", pal("dot", (30, 60, 90)))
write("shapes-rgb/train/dot/b.png", coloured("dot", (65535, 32896, 0), depth=16))  # 255, 128, 0
write("shapes-rgb/train/ring/a.png", coloured("ring", (10, 20, 30), interlace=True))
write("shapes-rgb/test/bar/x.png", coloured("bar", (1, 2, 3)))
write("shapes-rgb/test/dot/x.png", pal("dot", (4, 5, 6)))
write("shapes-rgb/test/ring/x.png", coloured("ring", (7, 8, 9)))

# Gray and colour images in one data set: an error naming both.
write("mixed-channels/train/a/1.png", gray8("bar", 200))
write("mixed-channels/train/b/1.png", coloured("bar", (200, 0, 0)))

# Images of two sizes in one data set: an error naming both.
write("mixed-sizes/train/a/1.png", gray8("bar", 200))
write("mixed-sizes/train/b/1.png", png([[0] * 28 for _ in range(27)], 8, 0))
