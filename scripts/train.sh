#!/usr/bin/env bash
# Builds nabla and installs it into .local/ (with what is missing from
# Debian, Fashion-MNIST included), then trains the default model, the LeNet
# variant of models/lenet.json, on Fashion-MNIST: 5 epochs of SGD, then its
# test accuracy.  Arguments are passed to `nabla train` (e.g. --epochs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/tools/nabla train models/lenet.json "$@"
