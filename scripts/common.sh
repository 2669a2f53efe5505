# Sourced by run.sh and test.sh: set up (if needed), then point at the venv and
# the MNIST folder (../shared/data/mnist unless LENET_MCU_MNIST_DIR is set).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
VENV="${VENV:-$here/.venv}"
if [ -z "${LENET_MCU_MNIST_DIR:-}" ] && [ -d "$here/../shared/data/mnist" ]; then
  export LENET_MCU_MNIST_DIR="$(cd "$here/../shared/data/mnist" && pwd)"
fi
cd "$here"
