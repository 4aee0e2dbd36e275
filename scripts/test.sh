#!/usr/bin/env bash
# Command 2: set everything up and run the test suite, notebooks included (pytest --nbval).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
