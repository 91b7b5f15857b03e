#!/usr/bin/python3
"""Makes the binary fixtures of tests/test_cli.sh and prints the values the
test expects (computed by PyTorch in float64 from the stored float32 values).

    cd tests/data/cli && /usr/bin/python3 make-fixtures.py

Never run by make check; rerun it only to change the fixtures, then paste
the printed values into tests/test_cli.sh."""
import json
import struct

import torch
import torch.nn.functional as F

DTYPES = {torch.float32: "F32", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32"}


def save(path, tensors):
    """Writes a safetensors file: u64 header length, JSON header, data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


g = torch.Generator().manual_seed(3)
# tiny.json: conv 2x3x3 + relu -> max_pool 2 -> flatten -> linear 8 -> 3.
w = {
    "conv.weight": torch.rand(2, 1, 3, 3, generator=g) - 0.5,
    "conv.bias": torch.rand(2, generator=g) - 0.5,
    "fc.weight": torch.rand(3, 8, generator=g) - 0.5,
    "fc.bias": torch.rand(3, generator=g) - 0.5,
}
x = torch.rand(2, 1, 6, 6, generator=g)
labels = torch.tensor([2, 0], dtype=torch.int64)
save("tiny-weights.safetensors", w)
save("tiny-input.safetensors", {"input": x})
save("tiny-labels.safetensors", {"labels": labels})
save("tiny-labels-i32.safetensors", {"labels": labels.to(torch.int32)})
save("tiny-labels-bad.safetensors", {"labels": torch.tensor([2, 3])})
save("tiny-input-bad.safetensors", {"input": torch.rand(2, 1, 5, 5, generator=g)})

# The expected values, in float64.
p = {k: v.double().requires_grad_() for k, v in w.items()}
xd = x.double().requires_grad_()
h = F.relu(F.conv2d(xd, p["conv.weight"], p["conv.bias"]))
h = F.max_pool2d(h, 2).flatten(1)
out = F.linear(h, p["fc.weight"], p["fc.bias"])
loss = F.cross_entropy(out, labels)
loss.backward()
print("output", [f"{v:.9g}" for v in out.flatten().tolist()])
print("loss", f"{loss.item():.9g}")
print("grad.input[0..2]", [f"{v:.9g}" for v in xd.grad.flatten()[:3].tolist()])
for k, v in p.items():
    print("grad." + k, [f"{t:.9g}" for t in v.grad.flatten()[:3].tolist()])
nz = [(i, v) for i, v in enumerate(xd.grad.flatten().tolist()) if v != 0]
print("grad.input nonzero", [(i, f"{v:.9g}") for i, v in nz[:4]])
