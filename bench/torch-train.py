#!/usr/bin/python3
"""Trains a sequential model of models/ (lenet, keras-cnn, mobilenet,
autoencoder...) in PyTorch with the same data, settings and optimizer as
`nabla train` uses for models/NAME.json, and prints its test accuracy, or
for an mse model trained on its own input images (an autoencoder) its
test reconstruction loss: the reference figures for docs/training.md.
Needs Debian's python3-torch; nabla's build and tests never run it.

    /usr/bin/python3 bench/torch-train.py NAME|FILE.json [--seed S] [--threads N]
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
    ap.add_argument("model", help="a model of models/ by name, or a model file")
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
    images_as_targets = spec.get("loss", {}).get("type") == "mse"
    loss_fn = nn.MSELoss() if images_as_targets else nn.CrossEntropyLoss()
    batch = torchmodels.training(spec)["batch_size"]
    for epoch in range(a.epochs):
        t0 = time.time()
        net.train()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            b = perm[i:i + batch]
            opt.zero_grad()
            out = net(x[b])
            loss = loss_fn(out, x[b].reshape(out.shape) if images_as_targets else y[b])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            out = torch.cat([net(xt[i:i + 1000]) for i in range(0, len(xt), 1000)])
            if images_as_targets:
                score, what = loss_fn(out, xt.reshape(out.shape)).item(), "test loss"
            else:
                score, what = (out.argmax(1) == yt).float().mean().item(), "test accuracy"
        print(f"epoch {epoch + 1}: {what} {score:.4f} ({time.time() - t0:.1f} s)", flush=True)
    print(f"{spec.get('name', a.model)}: pytorch {what}: {score:.4f} (seed {a.seed}, "
          f"{n} training images)")
    if a.save:
        torchmodels.save_safetensors(a.save, torchmodels.nabla_state_dict(net))
        print(f"wrote {a.save}")


if __name__ == "__main__":
    main()
