#!/usr/bin/env bash
# Builds nabla (installing what is missing) and runs the demo: a small CNN,
# forward and backward, and its gradient-check report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./build/examples/demo
