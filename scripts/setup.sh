#!/usr/bin/env bash
# Create .venv (if absent) and install the project with its test extras. Sourced by the others.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"
# matplotlib's font cache lives with this environment: a cache in ~/.cache that names the fonts
# of a deleted environment makes matplotlib fall back with "findfont" warnings in the notebooks
export MPLCONFIGDIR="$PWD/.venv/matplotlib"
