#!/usr/bin/env bash
# Lint and format check (what CI runs before the tests): ruff for Python,
# clang-format for the firmware's C. `scripts/lint.sh --fix` rewrites instead.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$here/.venv}"
cd "$here"
mapfile -t c_files < <(git ls-files 'firmware/*.c' 'firmware/*.h' 'firmware/*.cc' 'tests/support/*.c' 'tests/support/*.h')
if [ "${1:-}" = "--fix" ]; then
  "$VENV/bin/ruff" check --fix .
  "$VENV/bin/ruff" format .
  "$VENV/bin/clang-format" -i "${c_files[@]}"
  exit 0
fi
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/clang-format" --dry-run -Werror "${c_files[@]}"
echo "lint: clean"
