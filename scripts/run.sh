#!/usr/bin/env bash
# Set up (if needed) and run the main job end to end on the emulated board:
# train -> quantize -> evaluate -> codegen -> build -> flash (QEMU) -> verify.
# Extra arguments go to `lenet-mcu pipeline` (e.g. --data DIR, --fast).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
VENV="${VENV:-$here/.venv}"
if [ -z "${LENET_MCU_MNIST_DIR:-}" ] && [ -d "$here/../shared/data/mnist" ]; then
  export LENET_MCU_MNIST_DIR="$(cd "$here/../shared/data/mnist" && pwd)"
fi
cd "$here"
exec "$VENV/bin/lenet-mcu" pipeline "$@"
