#!/usr/bin/env bash
# Set up (if needed), check lint and format (scripts/lint.sh), and run the whole test suite: unit tests, host bit-exactness
# over all 10,000 MNIST test images, and the emulated-board end-to-end check.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$here/scripts/lint.sh"  # style first: a lint failure is cheap to find
exec "$VENV/bin/python" -m pytest -ra "$@"
