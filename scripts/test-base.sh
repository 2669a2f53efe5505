#!/usr/bin/env bash
# The base install (flash, verify, reports, port listing) on every supported
# Python, each in a fresh venv with only `pip install .[test]`: no TensorFlow, no
# codegen extra. Runs the tests marked `base`. Extra arguments go to pytest.
# PYTHONS="3.11 3.12 3.13" by default; an interpreter that is not installed
# (neither pythonX.Y on PATH nor under pyenv) is reported and skipped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
versions=(${PYTHONS:-3.11 3.12 3.13})

find_python() {
  local v=$1 candidate
  for candidate in "$(command -v "python$v" || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/"python$v"; do
    # a pyenv shim exists even when that version is not selected: it must run and be X.Y
    if [ -x "$candidate" ] && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$v" ]; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

mapfile -t base_modules < <(cd "$here/tests" && grep -rl --include='test_*.py' '^pytestmark = pytest.mark.base' . | sort)

work="$(mktemp -d "${TMPDIR:-/tmp}/lenet-mcu-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
wheel=""
ran=0
for v in "${versions[@]}"; do
  if ! python="$(find_python "$v")"; then
    echo "test-base: Python $v not found (python$v on PATH or under pyenv): skipped"
    continue
  fi
  venv="$work/py$v"
  echo "test-base: Python $v ($python): fresh venv, pip install lenet-mcu[test]"
  "$python" -m venv "$venv"
  if [ -z "$wheel" ]; then  # one wheel for every venv: each installs the same files, as a user would
    "$venv/bin/python" -m pip wheel --disable-pip-version-check -q --no-deps -w "$work/dist" "$here" \
      >"$work/wheel.log" 2>&1 || { tail -n 30 "$work/wheel.log" >&2; echo "test-base: building the wheel failed" >&2; exit 1; }
    wheel="$(ls "$work"/dist/lenet_mcu-*.whl)"
  fi
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "$wheel[test]" >"$work/pip-$v.log" 2>&1; then
    tail -n 30 "$work/pip-$v.log" >&2
    echo "test-base: the base install failed on Python $v" >&2
    exit 1
  fi
  # Nothing of the extras may have come along with the base install.
  "$venv/bin/python" - <<'PY'
import importlib.util, sys
extra = [m for m in ("tensorflow", "keras", "tflite_micro", "tflite_runtime", "ai_edge_litert", "jinja2")
         if importlib.util.find_spec(m)]
sys.exit(f"test-base: the base install pulled in {', '.join(extra)}" if extra else 0)
PY
  # From tests/, so neither pytest nor the CLI processes the tests start put the checkout's
  # lenet_mcu/ on sys.path in front of the installed package; only the modules that mark
  # themselves `base` (the others may not even import without the extras).
  (cd "$here/tests" && "$venv/bin/pytest" -c ../pyproject.toml --rootdir .. -q -m base -p no:cacheprovider \
     "${base_modules[@]}" "$@")
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "test-base: no Python interpreter found" >&2; exit 1; }
