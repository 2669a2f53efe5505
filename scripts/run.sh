#!/usr/bin/env bash
# Set up (if needed) and run the main job end to end on the emulated board:
# train -> quantize -> evaluate -> codegen -> build -> QEMU -> verify.
# Extra arguments go to `lenet-mcu pipeline` (e.g. --data DIR, --fast).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
exec "$VENV/bin/lenet-mcu" pipeline "$@"
