#!/usr/bin/env bash
# One-time set-up, safe to run again: Debian toolchain + emulator, and a venv
# with lenet-mcu installed (editable) with its training and test extras.
# Usage: source-free; other scripts call it. VENV overrides the venv location.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$here/.venv}"

debs=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm openocd)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
stamp="$VENV/.lenet-mcu-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  echo "setup: installing lenet-mcu and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -e "$here[train,test]" 2>&1 | grep -v -E "^WARNING: Location|BuildBackendWarning|^\s*$" || true
  "$VENV/bin/python" -c "import lenet_mcu, tensorflow, tflite_runtime, tflite_micro" 2>/dev/null \
    || { echo "setup: the install into $VENV failed" >&2; exit 1; }
  touch "$stamp"
fi
