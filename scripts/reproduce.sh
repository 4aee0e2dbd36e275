#!/usr/bin/env bash
# Command 1: set everything up and regenerate all results of the selected profile with DVC.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
if [ ! -d .dvc ]; then dvc init --quiet; fi
dvc repro "$@"
dvc metrics show
