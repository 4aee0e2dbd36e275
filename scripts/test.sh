#!/usr/bin/env bash
# Command 2: set everything up and run the test suite, notebooks included (pytest --nbval).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
# one test process per core, at most 4 (pytest-xdist; a test file, and so every cell of a
# notebook, stays in one process); more would multiply the memory of the torch imports
workers=$(python -c "import os; print(min(4, os.cpu_count() or 1))")
python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
    -n "$workers" --dist loadfile "$@"
