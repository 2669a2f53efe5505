#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit tests, host bit-exactness
# over all 10,000 MNIST test images, and the emulated-board end-to-end check.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
VENV="${VENV:-$here/.venv}"
if [ -z "${LENET_MCU_MNIST_DIR:-}" ] && [ -d "$here/../shared/data/mnist" ]; then
  export LENET_MCU_MNIST_DIR="$(cd "$here/../shared/data/mnist" && pwd)"
fi
cd "$here"
exec "$VENV/bin/python" -m pytest -ra "$@"
