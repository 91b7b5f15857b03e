#!/usr/bin/python3
"""Trains the course's LeNet variant and Keras CNN in PyTorch with the same
data, settings and optimizers as `nabla train` uses for models/lenet.json
and models/keras-cnn.json, and prints each test accuracy: the reference
figure for docs/training.md.  Needs Debian's python3-torch; nabla's build
and tests never run it.

    /usr/bin/python3 bench/torch-train.py [lenet|keras-cnn] [--seed S] [--threads N]
        [--epochs E] [--save W.safetensors]

--save writes the trained state_dict as safetensors under nabla's names,
for `nabla eval`/`nabla train --weights W.safetensors` (docs/training.md).
"""
import argparse
import sys
import time

import torch
import torch.nn as nn

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import torchmodels  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["lenet", "keras-cnn"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--save", metavar="W.safetensors")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    images, labels = torchmodels.fashion_mnist(train=True)
    x = torch.tensor(images, dtype=torch.float32) / 255
    y = torch.tensor(labels, dtype=torch.long)
    images, labels = torchmodels.fashion_mnist(train=False)
    xt = torch.tensor(images, dtype=torch.float32) / 255
    yt = torch.tensor(labels, dtype=torch.long)
    # models/NAME.json: the network, optimizer and validation split, as nabla reads them
    spec = torchmodels.load(a.model)
    net = torchmodels.build(spec)
    split = torchmodels.training(spec)["validation_split"]
    n = int(len(x) * (1 - split))  # Keras's validation_split: the last fraction
    x, y = x[:n], y[:n]
    opt = torchmodels.optimizer(spec, net.parameters())
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(a.epochs):
        t0 = time.time()
        net.train()
        perm = torch.randperm(n)
        for i in range(0, n, 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(net(x[b]), y[b])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.time() - t0:.1f} s)", flush=True)
    print(f"{a.model}: pytorch test accuracy: {acc:.4f} (seed {a.seed}, {n} training images)")
    if a.save:
        torchmodels.save_safetensors(a.save, torchmodels.nabla_state_dict(net))
        print(f"wrote {a.save}")


if __name__ == "__main__":
    main()
