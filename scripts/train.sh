#!/usr/bin/env bash
# Builds nabla (installing what is missing, Fashion-MNIST included) and
# trains the default model, the LeNet variant of models/lenet.json, on
# Fashion-MNIST: 5 epochs of SGD, then its test accuracy.  Arguments are
# passed to `nabla train` (e.g. --epochs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/tools/nabla train models/lenet.json "$@"
