#!/usr/bin/env bash
# One-time set-up, safe to run again: Debian toolchain + emulator, and a venv
# with lenet-mcu installed (editable) with its training and test extras.
# Usage: source-free; other scripts call it. VENV overrides the venv location.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$here/.venv}"

# The package list has one owner: scripts/debian-packages.txt (comments after #).
mapfile -t debs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' -e 's/[[:space:]]//g' "$here/scripts/debian-packages.txt")
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
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
  echo "setup: installing lenet-mcu and its dependencies into $VENV (log: $VENV/install.log)"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip \
         && "$VENV/bin/python" -m pip install -e "$here[train,codegen,test,lint]"; } >"$VENV/install.log" 2>&1 \
     || ! "$VENV/bin/python" -c "import lenet_mcu, tensorflow, tflite_runtime, tflite_micro" >>"$VENV/install.log" 2>&1; then
    tail -n 30 "$VENV/install.log" >&2
    echo "setup: the install into $VENV failed; full log: $VENV/install.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
