#!/usr/bin/python3
"""Trains the course's LeNet variant and Keras CNN in PyTorch with the same
data, settings and optimizers as `nabla train` uses for models/lenet.json
and models/keras-cnn.json, and prints each test accuracy: the reference
figure for docs/training.md.  Needs Debian's python3-torch; nabla's build
and tests never run it.

    /usr/bin/python3 bench/torch-train.py [lenet|keras-cnn] [--seed S] [--threads N]
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(f"{DATA}/{name}.gz") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def keras_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["lenet", "keras-cnn"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x = torch.tensor(idx("train-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx("train-labels-idx1-ubyte"), dtype=torch.long)
    xt = torch.tensor(idx("t10k-images-idx3-ubyte"), dtype=torch.float32).unsqueeze(1) / 255
    yt = torch.tensor(idx("t10k-labels-idx1-ubyte"), dtype=torch.long)
    if a.model == "lenet":
        net, opt_of, split = lenet(), lambda p: torch.optim.SGD(p, lr=0.1), 0.0
    else:
        net, opt_of, split = keras_cnn(), lambda p: torch.optim.RMSprop(p, lr=0.001), 0.2
    n = int(len(x) * (1 - split))  # Keras's validation_split: the last fraction
    x, y = x[:n], y[:n]
    opt = opt_of(net.parameters())
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(5):
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


if __name__ == "__main__":
    main()
